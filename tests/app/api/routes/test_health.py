"""GET /healthz and /readyz."""


def test_health_and_ready(client):
    assert client.get("/healthz").json() == {"status": "ok", "detail": None}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready"
