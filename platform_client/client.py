"""``PlatformClient``: the one object the bot holds to talk to the seal platform.

Each group of endpoints is mounted with one line, ``name = mount(SomeAPI)``; the sub-API is
created on first use and shares the client's HTTP connection, retries and error mapping.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

from platform_client.accounts import AccountsAPI
from platform_client.base import PlatformTransportClient, SubAPI
from platform_client.checks import ChecksAPI
from platform_client.documents import DocumentsAPI
from platform_client.events import EventsAPI
from platform_client.invoices import InvoicesAPI
from platform_client.notices import NoticesAPI
from platform_client.operator import OperatorAPI
from platform_client.orders import OrdersAPI
from platform_client.reminders import RemindersAPI
from platform_client.seals import SealsAPI
from platform_client.staff import StaffAPI
from platform_client.staff_sessions import StaffSessionsAPI

ApiT = TypeVar("ApiT", bound=SubAPI)


class mount(Generic[ApiT]):  # reads as a declaration: ``accounts = mount(AccountsAPI)``
    def __init__(self, factory: Callable[[PlatformTransportClient], ApiT]) -> None:
        self._factory = factory
        self._name = ""

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self._name = name

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> mount[ApiT]: ...

    @overload
    def __get__(self, instance: PlatformTransportClient, owner: type[Any]) -> ApiT: ...

    def __get__(self, instance: PlatformTransportClient | None, owner: type[Any]) -> mount[ApiT] | ApiT:
        if instance is None:
            return self
        api = self._factory(instance)
        # Cached on the instance: later reads find it there without calling the descriptor.
        instance.__dict__[self._name] = api
        return api


class PlatformClient(PlatformTransportClient):
    accounts = mount(AccountsAPI)
    events = mount(EventsAPI)
    checks = mount(ChecksAPI)
    orders = mount(OrdersAPI)
    documents = mount(DocumentsAPI)
    seals = mount(SealsAPI)
    invoices = mount(InvoicesAPI)
    staff = mount(StaffAPI)
    reminders = mount(RemindersAPI)
    staff_sessions = mount(StaffSessionsAPI)
    operator = mount(OperatorAPI)
    notices = mount(NoticesAPI)

    async def ready(self) -> None:
        """Returns when the platform is ready (it reached its database); raises
        ``PlatformClientError`` otherwise (unreachable, or 503 with the reason)."""
        await self.call("GET", "/readyz")
