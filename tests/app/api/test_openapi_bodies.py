"""app.api.openapi_bodies: the request bodies and error answers the image routes document
(the whole document: ``tests/app/test_main.py``)."""

from app.api.openapi_bodies import (
    IMAGE_MEDIA_TYPES,
    IMAGE_ROUTE,
    MAX_IMAGES_MARK,
    fields_body,
    files_body,
    multi_image_route,
)

BINARY = {"type": "string", "format": "binary"}


def test_one_image_body_is_multipart_file_or_json_base64():
    body = IMAGE_ROUTE["openapi_extra"]["requestBody"]
    assert body["required"] is True
    multipart = body["content"]["multipart/form-data"]
    assert multipart["schema"]["required"] == ["file"]
    assert multipart["encoding"] == {"file": {"contentType": IMAGE_MEDIA_TYPES}}
    assert body["content"]["application/json"]["schema"]["required"] == ["image_base64"]
    assert set(IMAGE_ROUTE["responses"]) == {413, 415, 422, 503}
    assert IMAGE_MEDIA_TYPES.startswith("image/bmp, ")
    assert IMAGE_MEDIA_TYPES.endswith(", application/octet-stream")


def test_several_image_arrays_are_marked_for_the_setting():
    body = multi_image_route()["requestBody"]["content"]
    files = body["multipart/form-data"]["schema"]["properties"]["files"]
    many = body["application/json"]["schema"]["oneOf"][1]["properties"]["images_base64"]
    for array in (files, many):
        assert array[MAX_IMAGES_MARK] is True and "maxItems" not in array
    assert MAX_IMAGES_MARK not in str(IMAGE_ROUTE)


def test_multipart_only_bodies():
    assert files_body("files", 16) == {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"files": {"type": "array", "items": BINARY, "maxItems": 16}},
                        "required": ["files"],
                    }
                }
            },
        }
    }
    schema = fields_body(("first", "second"))["requestBody"]["content"]["multipart/form-data"]
    assert schema["schema"] == {
        "type": "object",
        "required": ["first", "second"],
        "properties": {"first": BINARY, "second": BINARY},
    }
