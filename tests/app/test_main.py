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


@pytest.mark.parametrize("path,response", IMAGE_ROUTES.items())
def test_image_routes_document_both_bodies(openapi, path, response):
    op = openapi["paths"][path]["post"]
    content = op["requestBody"]["content"]
    assert op["requestBody"]["required"] is True
    assert content["multipart/form-data"]["schema"]["properties"]["file"] == {
        "type": "string",
        "format": "binary",
    }
    assert content["multipart/form-data"]["schema"]["required"] == ["file"]
    assert content["application/json"]["schema"]["required"] == ["image_base64"]
    for status in ("413", "415", "422", "503"):
        schema = op["responses"][status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (status, schema)
    ok = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": f"#/components/schemas/{response}"}


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
