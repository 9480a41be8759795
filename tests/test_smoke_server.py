from conftest import BUNDLED_ID, Server


async def test_streams_listed(server: Server) -> None:
    status, body = await server.get("/api/streams")
    assert status == 200
    assert [s["id"] for s in body] == [BUNDLED_ID]
