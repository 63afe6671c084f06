from tests.conftest import WUXI, YUZHONG


async def test_login_and_coverage(client, make_account, login):
    admin = await make_account("district_admin", YUZHONG)
    headers = await login(admin)
    me = await client.get("/api/v1/me", headers=headers)
    assert me.json()["role"] == "district_admin"
    own = await client.get(f"/api/v1/regions/{YUZHONG}/coverage", headers=headers)
    assert own.status_code == 200, own.text
    other = await client.get(f"/api/v1/regions/{WUXI}/coverage", headers=headers)
    assert other.status_code == 403
