"""Sandboxed template rendering: values are data, templates cannot reach Python,
errors say which template and line failed, and output size is capped."""

from __future__ import annotations

import pytest

from agentflows.tasks.errors import TemplateRenderError
from agentflows.tasks.prompts import MAX_RENDER_CHARS, evaluate, render

SSTI = "{{ ''.__class__.__mro__ }}"


def render_one(
    source: str, variables: dict[str, object] | None = None, *, html: bool = False, limit: int = MAX_RENDER_CHARS
) -> str:
    """Render a single template named `page.md`."""
    return render({"page.md": source}, "page.md", variables or {}, html=html, limit=limit)


def test_template_syntax_given_as_a_value_is_printed_as_text() -> None:
    page = render_one("Topic: {{ inputs.topic }}", {"inputs": {"topic": SSTI}})

    assert page == f"Topic: {SSTI}"


def test_a_value_is_not_rendered_a_second_time_when_included_or_filtered() -> None:
    sources = {"page.md": "{% include 'part.md' %}|{{ topic | upper }}", "part.md": "{{ topic }}"}

    page = render(sources, "page.md", {"topic": "{{ 7 * 7 }}"})

    assert page == "{{ 7 * 7 }}|{{ 7 * 7 }}"
    assert "49" not in page


@pytest.mark.parametrize(
    "source",
    [
        SSTI,
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ lipsum.__globals__['os'] }}",
        "{{ '{0.__class__}'.format(1) }}",
    ],
)
def test_template_that_reaches_for_python_internals_is_rejected(source: str) -> None:
    with pytest.raises(TemplateRenderError, match=r"'page\.md' line 1 failed to render: access to attribute .* unsafe"):
        render_one(source)


def test_expression_that_reaches_for_python_internals_is_rejected() -> None:
    with pytest.raises(TemplateRenderError, match=r"expression .*__class__.* failed: access to attribute"):
        evaluate("{{ inputs.__class__.__mro__ }}", {"inputs": {}})


def test_evaluate_reads_inputs_with_or_without_braces() -> None:
    assert evaluate("{{ inputs.chapters }}", {"inputs": {"chapters": 3}}) == 3
    assert evaluate("inputs.chapters * 2", {"inputs": {"chapters": 3}}) == 6


def test_undefined_variable_names_the_variable_template_and_line() -> None:
    with pytest.raises(TemplateRenderError) as caught:
        render_one("Title\n\nAbout {{ inputs.topic }} and {{ missing }}", {"inputs": {"topic": "tides"}})

    assert str(caught.value) == "template 'page.md' line 3 failed to render: 'missing' is undefined"


def test_undefined_attribute_of_a_mapping_is_an_error_not_empty_text() -> None:
    with pytest.raises(TemplateRenderError, match=r"'page\.md' line 2 .*has no attribute 'subtitle'"):
        render_one("# {{ plan.title }}\n{{ plan.subtitle }}", {"plan": {"title": "Tides"}})


def test_error_inside_an_included_template_names_that_template_and_its_line() -> None:
    sources = {
        "layout.html": "<h1>{{ title }}</h1>\n{% include 'partials/notice.html' %}\n",
        "partials/notice.html": "<p>notice</p>\n<p>{{ notice_text }}</p>\n",
    }

    with pytest.raises(TemplateRenderError) as caught:
        render(sources, "layout.html", {"title": "Tides"})

    message = str(caught.value)
    assert "'partials/notice.html' line 2" in message
    assert "'notice_text' is undefined" in message


def test_size_cap_stops_a_runaway_loop() -> None:
    runaway = "{% for i in range(100000) %}{% for j in range(100000) %}spam {% endfor %}{% endfor %}"

    with pytest.raises(TemplateRenderError, match=r"'page\.md' rendered more than 400,000 characters"):
        render_one(runaway)


def test_size_cap_can_be_lowered_and_output_at_the_cap_still_renders() -> None:
    loop = "{% for i in range(n) %}x{% endfor %}"

    assert render_one(loop, {"n": 50}, limit=50) == "x" * 50
    with pytest.raises(TemplateRenderError, match="more than 50 characters"):
        render_one(loop, {"n": 51}, limit=50)


def test_size_cap_refuses_a_huge_repeated_string_before_building_it() -> None:
    with pytest.raises(TemplateRenderError) as caught:
        render_one("{{ word * count }}", {"word": "spam ", "count": 10**9})

    assert str(caught.value) == (
        "template 'page.md' line 1 failed to render: '*' would make a value of 5,000,000,000 items, "
        "more than the 400,000 characters a render may produce"
    )


def test_small_repetition_and_powers_still_work() -> None:
    assert render_one("{{ '-' * 3 }} {{ [0] * 2 }} {{ 2 ** 10 }} {{ 1.5 ** 2 }}") == "--- [0, 0] 1024 2.25"


def test_huge_power_is_refused_before_it_is_computed() -> None:
    with pytest.raises(TemplateRenderError, match=r"'page\.md' line 1 .*10 \*\* 1000000000 is too large"):
        render_one("{{ 10 ** n }}", {"n": 10**9})


def test_template_that_includes_itself_names_the_cycle() -> None:
    sources = {"a.md": "A {% include 'b.md' %}", "b.md": "B {% include 'a.md' %}"}

    with pytest.raises(TemplateRenderError) as caught:
        render(sources, "a.md", {})

    assert str(caught.value) == (
        "template 'a.md' includes itself ('a.md' → 'b.md' → 'a.md'); remove one of these includes"
    )


def test_macro_that_calls_itself_fails_with_a_render_error() -> None:
    with pytest.raises(TemplateRenderError, match=r"'page\.md' recursed without end"):
        render_one("{% macro again() %}{{ again() }}{% endmacro %}{{ again() }}")


def test_missing_include_names_the_missing_template() -> None:
    with pytest.raises(TemplateRenderError, match=r"'page\.md' line 2 .*'partials/gone\.html'.*not one of"):
        render_one("intro\n{% include 'partials/gone.html' %}")


def test_items_on_a_mapping_is_the_key_not_the_dict_method() -> None:
    plan = {"title": "Tides", "items": [{"title": "Moon"}, {"title": "Sun"}]}

    page = render_one(
        "{% for item in plan.items %}{{ item.title }};{% endfor %}{{ plan.items | length }}", {"plan": plan}
    )

    assert page == "Moon;Sun;2"


def test_mapping_without_the_key_still_offers_its_methods() -> None:
    page = render_one("{% for key, value in data.items() %}{{ key }}={{ value }} {% endfor %}", {"data": {"a": 1}})

    assert page == "a=1 "


def test_html_mode_escapes_values() -> None:
    page = render_one("<h1>{{ title }}</h1>", {"title": '<script>alert(1)</script> & "more"'}, html=True)

    assert page == "<h1>&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;more&#34;</h1>"
    assert "<script" not in page


def test_text_mode_leaves_values_unescaped_for_prompts() -> None:
    assert render_one("{{ code }}", {"code": "a < b && c"}) == "a < b && c"
