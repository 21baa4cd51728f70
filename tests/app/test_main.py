"""The app as a whole: routes and the OpenAPI document."""

import pytest

#: Every route that takes an image, with its response schema.
IMAGE_ROUTES = {
    "/v1/analyze": "AnalyzeResponse",
    "/v1/faces": "FacesResponse",
    "/v1/score": "ScoreResponse",
}


@pytest.fixture
def openapi(fake_client):
    r = fake_client.get("/openapi.json")
    assert r.status_code == 200, r.text
    return r.json()


#: The routes that take several images too.
MULTI_ROUTES = {"/v1/analyze": "AnalyzeBatchResponse", "/v1/score": "ScoreBatchResponse"}

BASE64_SCHEMA_KEYS = {"type", "pattern", "contentEncoding", "contentMediaType"}


@pytest.mark.parametrize("path,response", IMAGE_ROUTES.items())
def test_image_routes_document_both_bodies(openapi, path, response):
    op = openapi["paths"][path]["post"]
    content = op["requestBody"]["content"]
    assert op["requestBody"]["required"] is True
    multipart = content["multipart/form-data"]
    file = multipart["schema"]["properties"]["file"]
    assert (file["type"], file["format"]) == ("string", "binary")
    assert "image/jpeg" in multipart["encoding"]["file"]["contentType"]
    js = content["application/json"]["schema"]
    if path in MULTI_ROUTES:
        assert multipart["schema"]["anyOf"] == [{"required": ["file"]}, {"required": ["files"]}]
        files = multipart["schema"]["properties"]["files"]
        assert files["items"] == {"type": "string", "format": "binary"}
        assert (files["minItems"], files["maxItems"]) == (1, 8)  # the max_images setting
        one, many = js["oneOf"]
        assert one["required"] == ["image_base64"] and many["required"] == ["images_base64"]
        assert many["properties"]["images_base64"]["maxItems"] == 8
        b64 = one["properties"]["image_base64"]
        assert many["properties"]["images_base64"]["items"] == b64
        ok = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok == {
            "anyOf": [
                {"$ref": f"#/components/schemas/{response}"},
                {"$ref": f"#/components/schemas/{MULTI_ROUTES[path]}"},
            ],
            "title": ok["title"],
        }
    else:
        assert multipart["schema"]["required"] == ["file"]
        assert js["required"] == ["image_base64"]
        b64 = js["properties"]["image_base64"]
        ok = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok == {"$ref": f"#/components/schemas/{response}"}
    assert set(b64) >= BASE64_SCHEMA_KEYS and b64["contentEncoding"] == "base64"
    for status in ("408", "413", "415", "422", "503", "504"):
        schema = op["responses"][status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (status, schema)
    assert "Retry-After" in op["responses"]["503"]["headers"]
    assert "401" not in op["responses"] and "security" not in op  # no keys set


def test_no_fastapi_validation_schema(openapi):
    """Every 422 is the service's JSON error, not FastAPI's default shape."""
    assert "HTTPValidationError" not in openapi["components"]["schemas"]
    for path, ops in openapi["paths"].items():
        for op in ops.values():
            if "422" in op["responses"]:
                schema = op["responses"]["422"]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, path


def test_open_routes_and_metrics_are_documented(openapi):
    for path in ("/healthz", "/readyz", "/metrics"):
        assert "get" in openapi["paths"][path]
        assert "504" not in openapi["paths"][path]["get"]["responses"]
    assert "text/plain" in openapi["paths"]["/metrics"]["get"]["responses"]["200"]["content"]


def test_query_parameters_are_documented(openapi):
    def params(path):
        return {p["name"] for p in openapi["paths"][path]["post"].get("parameters", [])}

    assert params("/v1/analyze") == {"stages", "model", "descriptor"}
    assert params("/v1/faces") == {"descriptor"}
    assert params("/v1/score") == {"model"}
    assert "get" in openapi["paths"]["/v1/stages"]


def test_face_record_is_documented(openapi):
    face = openapi["components"]["schemas"]["FaceOut"]["properties"]
    assert {"box", "detector_score", "detector", "keypoints", "landmarks", "embedding"} <= set(face)
    assert "predictions" in face and "score" not in face
