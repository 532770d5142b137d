#!/usr/bin/env python3
"""Renders chat-template fixtures for Selma's Java interpreter (dev.selma.engine.tokenizer.template).

Reference: Hugging Face transformers' apply_chat_template(..., tokenize=False). transformers is not
needed (nor installed in CI); only jinja2 (3.1.x). This script rebuilds the environment that
transformers.utils.chat_template_utils._compile_jinja_template builds, from reading that function:

  * jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
    extensions=[<AssistantTracker>, jinja2.ext.loopcontrols])
  * filters["tojson"] replaced by json.dumps(x, ensure_ascii=False, indent=indent,
    separators=separators, sort_keys=sort_keys) -- jinja2's own tojson would HTML-escape
  * globals["raise_exception"] raising jinja2.exceptions.TemplateError(message)
  * globals["strftime_now"] returning datetime.now().strftime(format); here the clock is fixed
    (FIXED_NOW) so that fixtures are reproducible; the Java test fixes its clock to the same time.

AssistantTracker only records where `{% generation %}` blocks render, which does not change the
text; GenerationTag below parses the same tag and renders its body unchanged.

apply_chat_template renders with messages=..., tools=<list or None>, documents=None,
add_generation_prompt=..., plus the tokenizer's special tokens (bos_token, eos_token, ...) and any
extra keyword arguments. Each case below records exactly the variables it was rendered with.

Usage: python3 tools/render_chat_template_fixtures.py   (writes engine/src/test/resources/template/*.fixtures.json.gz)
"""

import gzip
import json
from datetime import datetime
from pathlib import Path

import jinja2
import jinja2.ext
import jinja2.nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "engine" / "src" / "test" / "resources" / "template"
FIXED_NOW = datetime(2024, 9, 5, 14, 3, 9)


class GenerationTag(jinja2.ext.Extension):
    """`{% generation %}...{% endgeneration %}` renders its body (transformers' AssistantTracker tag)."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.Scope(body).set_lineno(lineno)


def environment():
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[GenerationTag, jinja2.ext.loopcontrols]
    )

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def strftime_now(format):
        return FIXED_NOW.strftime(format)

    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


ENV = environment()


def render(source, variables):
    """Expected output, or the error jinja2 raised (type name and message)."""
    try:
        return {"expected": ENV.from_string(source).render(**variables)}
    except jinja2.exceptions.TemplateSyntaxError:
        raise
    except Exception as e:  # the template's own raise_exception, undefined access, type errors
        return {"error": {"type": type(e).__name__, "message": str(e)}}


# ---------------------------------------------------------------------------------------------
# Conversations

def msg(role, content, **fields):
    return {"role": role, "content": content, **fields}


def call(name, arguments, call_id=None):
    c = {"type": "function", "function": {"name": name, "arguments": arguments}}
    if call_id is not None:
        c["id"] = call_id
    return c


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather in a given location — ünïcödé, 天气",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 14, "default": 1},
                "precision": {"type": "number", "default": 0.5},
                "verbose": {"type": "boolean", "default": False},
                "note": {"type": ["string", "null"], "default": None, "description": "Quote \"this\" \\ or\nthat"},
            },
            "required": ["location"],
        },
    },
}
SEARCH = {
    "type": "function",
    "function": {
        "name": "search_documents",
        "description": "Full-text search over the indexed documents.",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string"}, "rows": {"type": "integer"}},
            "required": ["query"],
        },
    },
}
TOOLS = [WEATHER, SEARCH]

SYSTEM = msg("system", "You are a helpful assistant. Answer briefly.")
Q1 = msg("user", "What is the capital of France?")
A1 = msg("assistant", "The capital of France is Paris.")
Q2 = msg("user", "And of Germany?")
A2 = msg("assistant", "Berlin.")

CHAT_CASES = [
    ("user_only", [Q1], {}),
    ("system_user", [SYSTEM, Q1], {}),
    ("multi_turn", [SYSTEM, Q1, A1, Q2], {}),
    ("multi_turn_no_system", [Q1, A1, Q2], {}),
    ("ends_with_assistant", [Q1, A1, Q2, A2], {}),
    ("unicode", [msg("system", "Réponds en français. 日本語も可。"),
                 msg("user", "Emoji 😀👍🏽, combining e\u0301, RTL עברית, CJK 中文, NBSP\u00a0end"),
                 msg("assistant", "Ça va — très bien! ✨"), msg("user", "Ünïcödé ẞ ß ǅ")], {}),
    ("empty_content", [msg("user", ""), msg("assistant", ""), msg("user", "")], {}),
    ("whitespace_content", [msg("system", "  padded system \n\n"), msg("user", "\n\tTabbed\r\nWindows line\n  "),
                            msg("assistant", "   spaced   "), msg("user", " \u3000ideographic space\u2028")], {}),
    ("template_like_content", [msg("user", "Literal {{ x }} and {% if y %} and {# z #} and \\n")], {}),
    ("special_token_spelling", [msg("user", "<|eot_id|><|im_end|></s>[INST] <s> <|begin_of_text|>")], {}),
    ("long_conversation", [SYSTEM] + [m for i in range(6) for m in (
        msg("user", f"Question number {i}: how many {i * 7} are there?"),
        msg("assistant", f"There are {i * 7}."))] + [msg("user", "Last one.")], {}),
    ("system_only", [SYSTEM], {}),
    ("no_messages", [], {}),
]

TOOL_CASES = [
    ("tools_user", [Q1], {"tools": TOOLS}),
    ("tools_system_user", [SYSTEM, msg("user", "What's the weather in Paris?")], {"tools": TOOLS}),
    ("tool_round_trip", [SYSTEM, msg("user", "What's the weather in Paris?"),
                         msg("assistant", None, tool_calls=[call("get_current_weather", {"location": "Paris, FR", "unit": "celsius", "days": 2})]),
                         msg("tool", "{\"temperature\": 21.5, \"sky\": \"clear\"}", name="get_current_weather"),
                         ], {"tools": TOOLS}),
    ("tool_round_trip_answered", [msg("user", "Weather in Oslo?"),
                                  msg("assistant", "", tool_calls=[call("get_current_weather", {"location": "Oslo"})]),
                                  msg("tool", "-3 and snowing"),
                                  msg("assistant", "It is -3 °C and snowing in Oslo."),
                                  msg("user", "Thanks!")], {"tools": TOOLS}),
    ("two_tool_calls", [msg("user", "Weather in Paris and search for Solr docs"),
                        msg("assistant", "Let me check both.", tool_calls=[
                            call("get_current_weather", {"location": "Paris"}),
                            call("search_documents", {"query": "Solr \"select\" handler", "rows": 5})]),
                        msg("tool", "sunny"), msg("tool", "3 documents found")], {"tools": TOOLS}),
    ("tool_arguments_as_string", [msg("user", "Weather?"),
                                  msg("assistant", "", tool_calls=[call("get_current_weather", "{\"location\": \"Rome\"}")]),
                                  msg("tool", "warm")], {"tools": TOOLS}),
    ("tool_result_mapping", [msg("user", "Weather?"),
                             msg("assistant", None, tool_calls=[call("get_current_weather", {"location": "Rome"})]),
                             msg("tool", {"temperature": 30, "unit": "celsius", "ok": True, "extra": None})], {"tools": TOOLS}),
    ("tools_no_user_message", [SYSTEM], {"tools": TOOLS}),
]

LLAMA31_CASES = [
    ("date_string", [SYSTEM, Q1], {"date_string": "01 Jan 2025"}),
    ("tools_in_system_message", [SYSTEM, Q1], {"tools": TOOLS, "tools_in_user_message": False}),
    ("builtin_tools", [SYSTEM, msg("user", "Search the web for Solr 9.10"),
                       msg("assistant", None, tool_calls=[call("brave_search", {"query": "Solr 9.10 release"})]),
                       msg("ipython", "Solr 9.10.1 was released.")],
     {"builtin_tools": ["brave_search", "wolfram_alpha", "code_interpreter"]}),
    ("custom_tools", [Q1], {"custom_tools": [SEARCH]}),
]

QWEN3_CASES = [
    ("thinking_in_content", [Q1, msg("assistant", "<think>\nThe user asks about France.\n</think>\n\nParis."), Q2], {}),
    ("reasoning_content_field", [Q1, msg("assistant", "Paris.", reasoning_content="Capital of France is Paris."), Q2], {}),
    ("last_turn_thinking", [Q1, msg("assistant", "<think>\nEasy.\n</think>\n\nParis.")], {}),
    ("enable_thinking_false", [Q1], {"enable_thinking": False}),
    ("enable_thinking_true", [Q1], {"enable_thinking": True}),
    ("tool_response_as_user", [msg("user", "<tool_response>\nraw\n</tool_response>"), msg("user", "Hi")], {}),
]

MISTRAL_CASES = [
    ("system_rejected", [SYSTEM, Q1], {}),
    ("two_users_rejected", [Q1, Q2], {}),
    ("assistant_first_rejected", [A1, Q1], {}),
    ("tool_role_rejected", [Q1, msg("tool", "x")], {}),
]

SPECIAL = {
    "llama": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "llama3-base": {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"},
    "qwen": {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
    "mistral": {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
}

TEMPLATE_SETS = {
    "llama-3.1-instruct": ("llama", CHAT_CASES + TOOL_CASES + LLAMA31_CASES),
    "llama-3.2-instruct": ("llama", CHAT_CASES + TOOL_CASES + LLAMA31_CASES[:3]),
    "llama-3.1-lenml": ("llama", CHAT_CASES),
    "llama-3-lenml": ("llama3-base", CHAT_CASES),
    "qwen2.5": ("qwen", CHAT_CASES + TOOL_CASES),
    "qwen3": ("qwen", CHAT_CASES + TOOL_CASES + QWEN3_CASES),
    "mistral-7b-instruct-v0.2": ("mistral", CHAT_CASES + MISTRAL_CASES),
}


def chat_fixture(name):
    special_key, cases = TEMPLATE_SETS[name]
    source = (TEMPLATES / f"{name}.jinja").read_text(encoding="utf-8")
    out = []
    for case_name, messages, extra in cases:
        for generation_prompt in (True, False):
            variables = {"messages": messages, "tools": None, "documents": None,
                         "add_generation_prompt": generation_prompt, **SPECIAL[special_key], **extra}
            out.append({"name": f"{case_name}/add_generation_prompt={generation_prompt}",
                        "variables": variables, **render(source, variables)})
    return {"template": f"{name}.jinja", "now": FIXED_NOW.isoformat(), "cases": out}


# ---------------------------------------------------------------------------------------------
# Language features, one small template each, rendered against the same environment.

FEATURES = [
    # whitespace control, trim_blocks and lstrip_blocks
    ("trim_blocks", "{% if true %}\nyes\n{% endif %}\nafter", {}),
    ("lstrip_blocks", "line\n    {% if true %}\n    kept indent\n    {% endif %}\nend", {}),
    ("lstrip_not_for_expressions", "a\n    {{ 'x' }}\n  b", {}),
    ("lstrip_after_expression_same_line", "{{ 'x' }}   {% if true %}y{% endif %}", {}),
    ("minus_strips", "a   \n  {%- if true -%}  \n  b  \n  {%- endif -%}\n  c", {}),
    ("plus_disables_lstrip", "a\n    {%+ if true %}b{% endif %}", {}),
    ("plus_disables_trim", "{% if true +%}\nb{% endif %}", {}),
    ("expression_minus", "a  {{- 'b' -}}  c", {}),
    ("comments", "a {# comment #}\n{#- stripped -#}  b\n  {# own line #}\nc", {}),
    ("raw_block", "{% raw %}{{ not evaluated }} {% if %}{% endraw %}!", {}),
    ("trailing_newline_dropped", "text\n", {}),
    ("crlf_normalized", "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\nc", {}),
    ("lstrip_tabs_and_nesting", "<\n\t{% for x in l %}\n\t\t{% if x %}\n\t\t\t{{ x }}\n\t\t{% endif %}\n\t{% endfor %}\n>", {"l": [1, 0, 2]}),
    ("lstrip_after_minus_expression", "{{- 'a' -}}\n   {% if true %}b{% endif %}", {}),
    ("comment_between_lines", "a\n  {#- c #}\n  b {# d -#}   \n c", {}),
    # literals and printing
    ("python_str", "{{ none }}|{{ true }}|{{ False }}|{{ 42 }}|{{ -7 }}|{{ 1.5 }}|{{ 1e20 }}|{{ 0.1 + 0.2 }}|{{ 1e-7 }}|{{ 100.0 }}", {}),
    ("float_repr", "{{ 1 / 3 }} {{ 123456789.125 }} {{ 1e15 }} {{ 1e16 }} {{ 0.0001 }} {{ 0.00001 }} {{ -0.0 }} {{ 2.5e-10 }} {{ 1e300 * 10 }} {{ 10 / 4 }}", {}),
    ("python_repr", "{{ [1, 'a', none, true, 2.0, {'k': (1, 2)}, (3,), ()] }}", {}),
    ("string_repr_quotes", "{{ [s, t] }}", {"s": "it's", "t": "both ' and \" \n\t\u0001é😀\u2028"}),
    ("string_escapes", "{{ 'tab\\there \\u00e9 \\x41 \\\\ \\' \"' }}|{{ \"dq \\\" \\n\" }}", {}),
    ("adjacent_strings", "{{ 'a' 'b' \"c\" }}", {}),
    ("undefined_prints_empty", "[{{ missing }}][{{ d.missing }}][{{ l[9] }}][{{ none.x }}]", {"d": {}, "l": [1]}),
    ("dict_literal", "{{ {'a': 1, 'b': [1, 2], 1: 'one', true: 'bool'} }}", {}),
    # operators
    ("arithmetic", "{{ 7 + 3 }} {{ 7 - 10 }} {{ 7 * 3 }} {{ 7 / 2 }} {{ 8 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 2 ** 10 }} {{ 2.5 * 2 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }}", {}),
    ("string_ops", "{{ 'ab' + 'cd' }} {{ 'ab' * 3 }} {{ 1 ~ 'x' ~ none ~ missing }} {{ [1] + [2] }} {{ [0] * 3 }}", {}),
    ("comparisons", "{{ 1 == 1.0 }} {{ true == 1 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ none == none }} {{ 'a' != 'b' }}", {}),
    ("in_operator", "{{ 'a' in 'cat' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 'z' not in 'abc' }} {{ 1 in [1.0] }}", {}),
    ("boolean_values", "{{ 0 or 'x' }} {{ '' and 'y' }} {{ 'a' and 'b' }} {{ not [] }} {{ not 'x' }} {{ none or [] }}", {}),
    ("ternary", "{{ 'yes' if 1 else 'no' }} {{ 'yes' if 0 else 'no' }} [{{ 'yes' if 0 }}]", {}),
    ("precedence", "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ -2 ** 2 }} {{ not 1 == 2 }} {{ 'a' ~ 2 * 3 }} {{ -3 | abs }} {{ ' x ' | trim ~ 'y' }}", {}),
    # access
    ("attribute_and_item", "{{ d.a }} {{ d['a'] }} {{ l[0] }} {{ l[-1] }} {{ l.0 }} {{ d.nested.x }} {{ d['nested']['x'] }}", {"d": {"a": 1, "nested": {"x": "deep"}}, "l": [10, 20, 30]}),
    ("slicing", "{{ l[1:] }} {{ l[:2] }} {{ l[::-1] }} {{ l[-2:] }} {{ l[::2] }} {{ s[1:3] }} {{ s[::-1] }} {{ l[5:] }} {{ l[1:-1] }}", {"l": [1, 2, 3, 4], "s": "héllo😀"}),
    ("dict_methods", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %} {{ d.keys() }} {{ d.values() }} {{ d.get('a') }} {{ d.get('zz', 'dflt') }} {{ d.get('zz') }}", {"d": {"a": 1, "b": "two"}}),
    ("string_methods", "{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ s.strip(' x') }}|{{ s.upper() }}|{{ s.lower() }}|{{ s.title() }}|{{ t.split() }}|{{ t.split(',') }}|{{ t.split(',', 1) }}|{{ t.rsplit(',', 1) }}|{{ s.startswith(' x') }}|{{ s.endswith(('y', 'x ')) }}|{{ s.replace('x', 'Z') }}|{{ '-'.join(['a', 'b']) }}|{{ s.find('Hello') }}|{{ s.count('l') }}|{{ t.splitlines() }}|{{ 'hello wORLD'.capitalize() }}",
     {"s": " xHello wörld x ", "t": "a,b,,c\nd e"}),
    ("qwen3_think_split", "{{ c.split('</think>')[-1].lstrip('\\n') }}|{{ c.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') }}", {"c": "<think>\nreason\n</think>\n\nanswer"}),
    # statements
    ("for_loop_vars", "{% for x in l %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.previtem }}{{ loop.nextitem }}|{% endfor %}", {"l": ["a", "b", "c"]}),
    ("for_else", "{% for x in [] %}x{% else %}empty{% endfor %}{% for x in missing %}y{% else %} also empty{% endfor %}", {}),
    ("for_filter", "{% for x in range(10) if x is odd %}{{ x }}{{ ',' if not loop.last }}{% endfor %}", {}),
    ("for_unpack", "{% for a, b in [(1, 2), [3, 4]] %}{{ a + b }} {% endfor %}{% for (k, v) in {'x': 1}.items() %}{{ k }}{{ v }}{% endfor %}", {}),
    ("for_dict_and_string", "{% for k in {'b': 1, 'a': 2} %}{{ k }}{% endfor %} {% for c in 'hé😀' %}[{{ c }}]{% endfor %}", {}),
    ("break_continue", "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %}", {}),
    ("nested_loops", "{% for a in [1, 2] %}{% for b in 'xy' %}{{ loop.index }}{{ a }}{{ b }} {% endfor %}{{ loop.index }};{% endfor %}", {}),
    ("loop_cycle", "{% for x in range(5) %}{{ loop.cycle('odd', 'even') }} {% endfor %}", {}),
    ("set_scoping", "{% set x = 1 %}{% for i in [1, 2] %}[{{ x }}]{% set x = i * 10 %}({{ x }}){% endfor %}{{ x }}{% if true %}{% set x = 5 %}{% endif %}{{ x }}", {}),
    ("namespace", "{% set ns = namespace(count=0, found=false) %}{% for i in range(4) %}{% set ns.count = ns.count + i %}{% if i == 2 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.count }} {{ ns.found }}", {}),
    ("set_tuple", "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t = 1, 2 %}{{ t }}", {}),
    ("set_block", "{% set block %}  Hello {{ name }}  {% endset %}[{{ block }}]{% set up | upper | trim %} shout {% endset %}[{{ up }}]", {"name": "W"}),
    ("macro", "{% macro greet(name, greeting='Hello') %}{{ greeting }}, {{ name }}!{% endmacro %}{{ greet('Ann') }} {{ greet('Bob', 'Hi') }} {{ greet(greeting='Yo', name='Cy') }} [{{ greet() }}]", {}),
    ("macro_recursive_json_type", "{% macro t(s) %}{% if s.type == 'array' %}list[{{ t(s['items']) }}]{% elif s.type == 'object' %}dict{% else %}{{ s.type }}{% endif %}{% endmacro %}{{ t({'type': 'array', 'items': {'type': 'array', 'items': {'type': 'string'}}}) }}", {}),
    ("macro_sees_globals", "{% set g = 'G' %}{% macro m() %}{{ g }}{{ outer }}{% endmacro %}{{ m() }}", {"outer": "O"}),
    ("call_block", "{% macro box(title) %}[{{ title }}: {{ caller() }}]{% endmacro %}{% call box('T') %}inner {{ 1 + 1 }}{% endcall %}", {}),
    ("call_block_args", "{% macro each(items) %}{% for i in items %}{{ caller(i) }}{% endfor %}{% endmacro %}{% call(x) each([1, 2]) %}<{{ x }}>{% endcall %}", {}),
    ("filter_block", "{% filter upper %}hello {{ 'world' }}{% endfilter %}", {}),
    ("with_block", "{% set a = 1 %}{% with a = 2, b = 3 %}{{ a }}{{ b }}{% endwith %}{{ a }}", {}),
    ("generation_tag", "{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}{% endgeneration %}{% else %}{{ m.content }}{% endif %}|{% endfor %}", {"messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]}),
    ("elif_chain", "{% for x in [1, 2, 3, 4] %}{% if x == 1 %}one{% elif x == 2 %}two{% elif x == 3 %}three{% else %}other{% endif %} {% endfor %}", {}),
    # filters
    ("filter_trim_length_case", "{{ '  a b  ' | trim }}|{{ 'xxaxx' | trim('x') }}|{{ 'hé😀' | length }}|{{ [1, 2] | count }}|{{ {'a': 1} | length }}|{{ 'aBc' | lower }}|{{ 'aBc' | upper }}|{{ 'hello WORLD' | capitalize }}|{{ \"hello wORLD-foo(bar [x <y 'z\" | title }}", {}),
    ("filter_tojson", "{{ d | tojson }}|{{ d | tojson(indent=2) }}|{{ [] | tojson(indent=2) }}|{{ d | tojson(sort_keys=true) }}|{{ d | tojson(separators=(',', ':')) }}|{{ 'é\"\\\\\\n\\u0001' | tojson }}|{{ 'é' | tojson(ensure_ascii=true) }}|{{ x | tojson }}",
     {"d": {"z": 1, "a": [1.5, None, True, "ü"], "m": {}}, "x": 1e-07}),
    ("filter_tojson_indent_string", "{{ {'a': [1, {'b': 2}]} | tojson(indent='\\t') }}", {}),
    ("filter_join", "{{ [1, 'a', none] | join }}|{{ ['a', 'b'] | join(', ') }}|{{ users | join(', ', attribute='name') }}|{{ 'abc' | join('-') }}", {"users": [{"name": "x"}, {"name": "y"}]}),
    ("filter_default", "{{ missing | default('d') }}|{{ none | default('d') }}|{{ '' | default('d', true) }}|{{ 'v' | d('d') }}|{{ false | default('d', boolean=true) }}", {}),
    ("filter_first_last_list", "{{ [3, 4] | first }}|{{ [3, 4] | last }}|{{ 'abc' | first }}|{{ {'k': 1, 'j': 2} | last }}|{{ 'ab' | list }}|{{ {'k': 1} | list }}|[{{ [] | first }}]", {}),
    ("filter_items", "{% for k, v in d | items %}{{ k }}:{{ v }} {% endfor %}{% for k, v in missing | items %}x{% endfor %}", {"d": {"b": 2, "a": 1}}),
    ("filter_numbers", "{{ '42' | int }}|{{ '4.7' | int }}|{{ 'x' | int }}|{{ 'x' | int(7) }}|{{ 3.9 | int }}|{{ true | int }}|{{ '2.5' | float }}|{{ 'x' | float }}|{{ 3 | float }}|{{ -4 | abs }}|{{ '0x1A' | int(0, 16) }}", {}),
    ("filter_replace_indent", "{{ 'aaa' | replace('a', 'b') }}|{{ 'aaa' | replace('a', 'b', 2) }}|{{ 'a\\nb\\n\\nc' | indent(2) }}|{{ 'a\\nb' | indent(2, true) }}|{{ 'a\\n\\nb\\n' | indent('> ', blank=true) }}", {}),
    ("filter_select", "{{ msgs | selectattr('role', 'equalto', 'user') | list | length }}|{{ msgs | rejectattr('role', 'eq', 'user') | map(attribute='content') | list }}|{{ [1, 2, 3, 4] | select('even') | list }}|{{ [0, 1, '', 'a'] | select | list }}|{{ [1, 2, 3] | reject('odd') | list }}|{{ msgs | selectattr('tool_calls') | list | length }}|{{ msgs | selectattr('role', 'in', ['system', 'tool']) | list | length }}",
     {"msgs": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "tool_calls": [1]}, {"role": "user", "content": "c"}, {"role": "system", "content": "s"}]}),
    ("filter_map", "{{ ['a', 'B'] | map('upper') | list }}|{{ [{'x': {'y': 1}}, {'x': {'y': 2}}] | map(attribute='x.y') | list }}|{{ [{'a': 1}, {}] | map(attribute='a', default=0) | list }}|{{ ['a b ', ' c'] | map('trim') | join('+') }}", {}),
    ("filter_reject_equalto", "{{ ['brave_search', 'code_interpreter', 'wolfram_alpha'] | reject('equalto', 'code_interpreter') | join(', ') }}", {}),
    ("filter_sort_unique_reverse", "{{ [3, 1, 2] | sort }}|{{ ['b', 'A', 'c'] | sort }}|{{ ['b', 'A', 'c'] | sort(case_sensitive=true) }}|{{ [3, 1, 2] | sort(reverse=true) }}|{{ [{'n': 2}, {'n': 1}] | sort(attribute='n') | map(attribute='n') | list }}|{{ ['a', 'A', 'b', 'a'] | unique | list }}|{{ [1, 2, 3] | reverse | list }}|{{ 'abc' | reverse }}", {}),
    ("filter_misc", "{{ '<a href=\"x\">&\\'' | escape }}|{{ '<b>' | e }}|{{ '<i>' | safe }}|{{ 5 | string ~ 'x' }}|{{ none | string }}|{{ d | attr('k') }}", {"d": {"k": "v"}}),
    # tests
    ("tests", "{{ x is defined }} {{ missing is defined }} {{ missing is undefined }} {{ none is none }} {{ x is string }} {{ 1 is number }} {{ 1.5 is number }} {{ true is number }} {{ true is boolean }} {{ 1 is integer }} {{ 1.0 is float }} {{ {} is mapping }} {{ [] is mapping }} {{ [] is iterable }} {{ 'x' is iterable }} {{ 1 is iterable }} {{ missing is iterable }} {{ [] is sequence }} {{ {} is sequence }} {{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 'abc' is lower }} {{ 'ABC' is upper }} {{ 1 is equalto 1 }} {{ 1 is eq 2 }} {{ 2 is gt 1 }} {{ 2 is ge 2 }} {{ 1 is lt 2 }} {{ 1 is le 0 }} {{ 1 is ne 2 }} {{ 2 is in [1, 2] }} {{ x is not none }} {{ none is sameas none }} {{ false is sameas false }} {{ raise_exception is callable }} {{ true is true }} {{ 0 is false }}", {"x": "s"}),
    ("test_argument_without_parens", "{{ 'a' is in 'cat' }} {{ 4 is divisibleby(2) }} {{ x is sameas none }}", {"x": None}),
    # globals
    ("range_and_dict", "{{ range(3) | list }} {{ range(1, 7, 2) | list }} {{ range(3, 0, -1) | list }} {{ dict(a=1, b='x') }} {{ namespace(a=1).a }}", {}),
    ("strftime_now", "{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%Y-%m-%d %H:%M:%S %A %B %j %p %I %y %-d %e %a') }}|{{ strftime_now('%%') }}", {}),
    ("raise_exception", "{{ raise_exception('Custom failure: ' ~ 42) }}", {}),
    ("raise_exception_in_loop", "{% for m in messages %}{% if m.role not in ['user', 'assistant'] %}{{ raise_exception('Unsupported role: ' + m.role) }}{% endif %}{% endfor %}", {"messages": [{"role": "user"}, {"role": "wizard"}]}),
    # runtime errors jinja2 raises
    ("error_undefined_attribute", "{{ missing.attr }}", {}),
    ("error_undefined_call", "{{ undefined_function() }}", {}),
    ("error_undefined_nested", "{{ d.a.b }}", {"d": {}}),
    ("error_undefined_arithmetic", "{{ missing + 1 }}", {}),
    ("error_list_index_then_key", "{{ messages[0]['role'] }}", {"messages": []}),
    ("error_immutable_append", "{% set l = [] %}{{ l.append(1) }}", {}),
    ("error_iterate_none", "{% for x in none %}{% endfor %}", {}),
    ("error_concat_types", "{{ 'a' + 1 }}", {}),
    ("error_set_attribute_on_dict", "{% set d = {} %}{% set d.x = 1 %}", {}),
    ("error_items_on_list", "{% for k, v in [1] | items %}{% endfor %}", {}),
    ("error_tojson_undefined", "{{ missing | tojson }}", {}),
    ("error_unpack", "{% for a, b in [[1, 2, 3]] %}{% endfor %}", {}),
]


def features_fixture():
    cases = []
    for name, source, variables in FEATURES:
        cases.append({"name": name, "template": source, "variables": variables, **render(source, variables)})
    return {"now": FIXED_NOW.isoformat(), "cases": cases}


def write(path, data):
    """One case a line, gzipped (a fifteenth of the text: the repository's size is budgeted; `zcat` shows
    it case by case). mtime 0 so that the same fixtures give the same bytes."""
    head = json.dumps({k: v for k, v in data.items() if k != "cases"}, ensure_ascii=False, indent=1)
    cases = ",\n".join("  " + json.dumps(c, ensure_ascii=False, separators=(",", ":")) for c in data["cases"])
    text = head[:-2] + ',\n "cases": [\n' + cases + "\n ]\n}\n"
    with open(path, "wb") as f, gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=9) as z:
        z.write(text.encode("utf-8"))


def main():
    print(f"jinja2 {jinja2.__version__}")
    for name in TEMPLATE_SETS:
        fixture = chat_fixture(name)
        write(TEMPLATES / f"{name}.fixtures.json.gz", fixture)
        errors = sum(1 for c in fixture["cases"] if "error" in c)
        print(f"{name}: {len(fixture['cases'])} cases ({errors} raise)")
    features = features_fixture()
    write(TEMPLATES / "features.fixtures.json.gz", features)
    errors = sum(1 for c in features["cases"] if "error" in c)
    print(f"features: {len(features['cases'])} cases ({errors} raise)")


if __name__ == "__main__":
    main()
