async def test_smoke(make_account, api):
    a = await make_account(realname=True)
    r = await api.get("/v1/me", headers=a.headers)
    print(r.json())
    assert r.status_code == 200
