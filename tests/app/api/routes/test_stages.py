"""GET /v1/stages: what /v1/analyze can run."""


def test_builtin_stages(fake_client):
    r = fake_client.get("/v1/stages")
    assert r.status_code == 200, r.text
    stages = {s["name"]: s for s in r.json()}
    names = [s["name"] for s in r.json()]
    assert len(names) == len(stages)  # each once
    # Registry (pipeline) order, whatever heads are added after them.
    assert names.index("landmarks") < names.index("trunk") < names.index("attractiveness")
    picked = {
        n: {k: stages[n][k] for k in ("requires", "provides", "default")}
        for n in ("landmarks", "trunk", "attractiveness")
    }
    assert picked == {
        "landmarks": {"requires": [], "provides": [], "default": False},
        "trunk": {"requires": ["landmarks"], "provides": [], "default": False},
        "attractiveness": {
            "requires": ["landmarks", "trunk"],
            "provides": ["attractiveness"],
            "default": True,
        },
    }
    assert stages["attractiveness"]["options"]["model"] == "'attractiveness_scut'"
    assert stages["trunk"]["options"]["model"] == "'dlib_face_recognition_resnet'"
    assert stages["landmarks"]["options"] == {}
    for s in stages.values():
        assert set(s["requires"]) <= set(stages), s  # every requirement is a listed stage
        assert s["summary"], s


def test_listed_stages_run(fake_client, png):
    """Every listed stage is accepted by /v1/analyze (none is 'unknown')."""
    names = ",".join(s["name"] for s in fake_client.get("/v1/stages").json())
    r = fake_client.post("/v1/analyze", params={"stages": names}, files={"file": png})
    assert r.status_code == 200, r.text
