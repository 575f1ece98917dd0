from loaders.errors import REASON_CHARS, LoadError, nothing_read, reason


def test_a_reason_is_one_line_and_capped() -> None:
    text = reason(ValueError("bad\n  <w:p>" + "x" * 500))
    assert text.startswith("bad <w:p>x")
    assert len(text) == REASON_CHARS
    assert text.endswith("…")


def test_a_silent_exception_is_named_and_a_key_error_unquoted() -> None:
    assert reason(RuntimeError()) == "RuntimeError"
    assert reason(KeyError("word/document.xml")) == "word/document.xml"


def test_nothing_read_names_the_last_failure_and_where() -> None:
    error = nothing_read(LoadError("unreadable slide: bad shape", page=3), "slide", "no text in the PowerPoint file")
    assert str(error) == "no slide could be read (unreadable slide: bad shape on slide 3)"
    assert error.page is None
    assert str(nothing_read(None, "slide", "no text in the PowerPoint file")) == "no text in the PowerPoint file"
