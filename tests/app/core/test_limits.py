"""Request bodies over the limit are refused with 413 without being read whole."""


def test_huge_base64_body_refused_before_reading(client, assert_error):
    huge = "A" * (4 * 1024 * 1024)
    r = client.post("/v1/faces", json={"image_base64": huge})
    assert_error(r, 413, "request_too_large")


def test_streamed_body_over_limit(client, assert_error):
    def gen():
        for _ in range(64):
            yield b"x" * 65536

    r = client.post("/v1/faces", content=gen(), headers={"content-type": "application/json"})
    assert_error(r, 413, "request_too_large")
