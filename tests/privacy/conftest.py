from tests.conversations.conftest import service  # noqa: F401  (the whole service, in process)
