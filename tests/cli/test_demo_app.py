"""The built-in demo app, in-process through werkzeug's test client."""

from __future__ import annotations

from werkzeug.test import Client

from fastserve.demo import MAX_STREAM_LINES, app


def client() -> Client:
    return Client(app)


def test_index_shows_the_environ_escaped() -> None:
    response = client().get("/?q=%3Cscript%3E", headers={"X-Probe": '<b>&"probe"</b>'})
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "<td>HTTP_X_PROBE</td><td>&lt;b&gt;&amp;&quot;probe&quot;&lt;/b&gt;</td>" in page
    assert "<td>QUERY_STRING</td><td>q=%3Cscript%3E</td>" in page
    # non-string environ values are shown by repr
    assert "<td>wsgi.version</td><td>(1, 0)</td>" in page
    assert "<b>&" not in page
    assert int(response.headers["Content-Length"]) == len(response.data)


def test_index_links_and_form() -> None:
    page = client().get("/").get_data(as_text=True)
    assert '<a href="/stream">' in page and '<a href="/">' in page
    assert '<form method="post" action="/">' in page
    assert "Posted fields" not in page


def test_form_post_echoes_the_fields_escaped() -> None:
    response = client().post("/", data={"name": "<Ada>", "message": "a&b", "empty": ""})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    posted = page.split("<h2>Posted fields</h2>", 1)[1].split("<h2>", 1)[0]
    assert "<td>name</td><td>&lt;Ada&gt;</td>" in posted
    assert "<td>message</td><td>a&amp;b</td>" in posted
    assert "<td>empty</td><td></td>" in posted


def test_empty_form_post() -> None:
    page = client().post("/", data={}).get_data(as_text=True)
    assert "The form was empty." in page


def test_post_of_another_content_type_is_summarised_not_shown() -> None:
    response = client().post("/", data=b"<xml/>", content_type="application/xml")
    page = response.get_data(as_text=True)
    assert "6 bytes of application/xml, not shown" in page
    assert "<xml/>" not in page


def test_stream_yields_lines_one_by_one() -> None:
    response = client().get("/stream?lines=3&delay=0")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert "Content-Length" not in response.headers
    chunks = list(response.response)
    assert len(chunks) == 4
    assert [c.split(b" at ")[0] for c in chunks[:3]] == [
        b"line 1 of 3",
        b"line 2 of 3",
        b"line 3 of 3",
    ]
    assert chunks[3] == b"done - back to the demo: /\n"


def test_stream_parameters_are_bounded() -> None:
    body = client().get(f"/stream?lines={MAX_STREAM_LINES * 10}&delay=-5").get_data(as_text=True)
    assert body.count("\n") == MAX_STREAM_LINES + 1
    assert f"line {MAX_STREAM_LINES} of {MAX_STREAM_LINES}" in body


def test_stream_ignores_bad_parameters(monkeypatch) -> None:
    import fastserve.demo as demo

    sleeps: list[float] = []
    monkeypatch.setattr(demo.time, "sleep", sleeps.append)
    body = client().get("/stream?lines=abc&delay=nan").get_data(as_text=True)
    assert "line 5 of 5" in body  # the defaults: 5 lines, 0.3 s apart
    assert sleeps == [0.3] * 4


def test_unknown_path_is_404_with_escaped_path() -> None:
    response = client().get("/<nope>")
    assert response.status_code == 404
    assert "&lt;nope&gt;" in response.get_data(as_text=True)


def test_wrong_method_is_405_with_allow() -> None:
    response = client().delete("/")
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD, POST"
    assert client().post("/stream").headers["Allow"] == "GET, HEAD"
