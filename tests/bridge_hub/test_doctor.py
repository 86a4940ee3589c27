"""`ukey-bridge doctor` checks the pairing, the PKCS#11 module, the UKey and the connection,
and says what to fix, in Chinese by default and in English on request."""

from __future__ import annotations

import io
from pathlib import Path

from tests.bridge_hub.conftest import Service
from tests.ukey_bridge.support import SoftHsmToken
from ukey_bridge import cli
from ukey_bridge.credential import CredentialStore
from ukey_bridge.pairing import pair


async def doctor(config: Path, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    parsed = cli.build_parser().parse_args(["--config-dir", str(config), *args])
    return await cli.run_command(parsed, out), out.getvalue()


async def test_a_paired_pc_with_its_key_and_driver_is_all_good_in_chinese(
    service: Service, softhsm: SoftHsmToken, tmp_path: Path
) -> None:
    code = await service.hub.create_pairing_code("acct-doc")
    CredentialStore(tmp_path / "cfg").save(await pair(service.url, code.code, device_name="前台电脑"))
    rc, said = await doctor(tmp_path / "cfg", "doctor", "--module", softhsm.module)
    assert rc == 0, said
    assert f"[正常] UKey: UKey {softhsm.serial}（{softhsm.label}）" in said
    assert f"[正常] 连接服务: 服务 {service.url} 接受了这台电脑" in said
    assert said.rstrip().endswith("一切正常。运行 `ukey-bridge run` 并保持开着即可。")


async def test_an_unpaired_pc_with_a_broken_driver_path_is_told_what_to_fix_in_english(
    tmp_path: Path,
) -> None:
    rc, said = await doctor(
        tmp_path / "cfg", "--lang", "en", "doctor", "--module", str(tmp_path / "vendor.so")
    )
    assert rc == 1
    assert "[TO FIX] Pairing: Not paired." in said
    assert "[TO FIX] PKCS#11 module: The driver does not load" in said
    assert said.rstrip().endswith("2 thing(s) to fix, see above.")


async def test_a_revoked_pairing_and_a_missing_driver_file_are_reported(
    service: Service, tmp_path: Path
) -> None:
    code = await service.hub.create_pairing_code("acct-doc")
    credential = await pair(service.url, code.code, device_name="PC")
    CredentialStore(tmp_path / "cfg").save(credential)
    assert await service.hub.revoke_device("acct-doc", credential.device_id)
    rc, said = await doctor(tmp_path / "cfg", "doctor", "--module", str(tmp_path / "missing.so"))
    assert rc == 1
    assert "[需要处理] PKCS#11 模块: 驱动无法加载" in said
    assert "[需要处理] 连接服务: 服务不再接受这台电脑" in said
