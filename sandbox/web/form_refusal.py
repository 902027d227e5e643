"""A refused form comes back filled in, each problem beside the field it concerns.

A form's POST route says, with :func:`shows_again`, which page its form is on and which of
the service's rules concern which field (the services name rules, not form fields, so the
mapping is the form's). When the request's validation refuses the form, or the service
refuses it by one of those rules, :class:`sandbox.web.rendering.PageRoute` asks for that
page again through its own GET route (so its sign-in, role and ownership checks run as on
any visit) with a :class:`Refusal` on ``request.state``; the template reads the entered
values back and places each problem through :class:`FormView`. Passwords, codes and ID
numbers are never kept, so no template can write one back into a page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlencode

from markupsafe import Markup
from starlette.datastructures import FormData

from sandbox.errors import SandboxError
from sandbox.input_limits import field_name, problem_rule, problem_text
from sandbox.refusal_text import say
from sandbox.web.csrf import CSRF_FIELD
from sandbox.web.i18n import MESSAGES, translator

#: Fields whose values are never kept for the form shown again.
SECRET_FIELDS = frozenset({CSRF_FIELD, "password", "otp", "code", "resident_id"})
#: Where the page shown again finds the refusal (``request.state``).
STATE_KEY = "form_refusal"
#: In a form's rules: any rule not named, shown at the form's top.
ANY_RULE = "*"

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


@dataclass(frozen=True)
class Required:
    """A rule about several fields, some left blank: each blank one is marked required."""

    fields: tuple[str, ...]


def required(*fields: str) -> Required:
    return Required(fields)


@dataclass(frozen=True)
class FormSpec:
    """Where a form is shown and how its refusals map onto its fields.

    ``page`` and ``form`` are formatted with the POST's path parameters (``form``, the
    form element's id, also with the entered values, for a page of several like forms);
    ``rules`` maps a service rule to the field it concerns (``None``: the form as a whole);
    ``labels`` gives the page-catalogue key of a field whose name is not one; ``query``
    names entered values the page takes in its address (and checks there).
    """

    page: str
    form: str
    rules: Mapping[str, str | Required | None] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    query: tuple[str, ...] = ()


def shows_again(
    page: str,
    *,
    form: str,
    rules: Mapping[str, str | Required | None] | None = None,
    labels: Mapping[str, str] | None = None,
    query: tuple[str, ...] = (),
) -> Callable[[Endpoint], Endpoint]:
    """Mark a POST route: its refusals show ``page`` again with the form filled in."""
    spec = FormSpec(page, form, rules or {}, labels or {}, query)

    def mark(endpoint: Endpoint) -> Endpoint:
        endpoint.form_spec = spec  # type: ignore[attr-defined]
        return endpoint

    return mark


def form_spec(endpoint: Callable[..., Any]) -> FormSpec | None:
    return getattr(endpoint, "form_spec", None)


@dataclass(frozen=True)
class Problem:
    """One field's problem: the field's name in the form, the rule, the English text."""

    field: str
    rule: str
    message: str
    article: str | None = None


@dataclass(frozen=True)
class Refusal:
    """What the page shown again is told: which form, why, and what was entered."""

    spec: FormSpec
    form: str
    error: SandboxError
    problems: tuple[Problem, ...]
    entered: Mapping[str, tuple[str, ...]]
    path: str
    query: str
    #: Refused by the request's validation (the problems say it all), not by a service.
    invalid_input: bool = False


def entered_values(form: FormData) -> dict[str, tuple[str, ...]]:
    """The text values as sent (files cannot be put back into a form), secrets left out."""
    out: dict[str, tuple[str, ...]] = {}
    for name in form:
        if name not in SECRET_FIELDS:
            out[name] = tuple(v for v in form.getlist(name) if isinstance(v, str))
    return out


def validation_problems(errors: Iterable[Mapping[str, Any]]) -> tuple[Problem, ...] | None:
    """Each invalid field's problem; ``None`` when anything but the form's fields is wrong
    (an address or a header: there is no form to correct)."""
    problems = []
    for error in errors:
        loc = tuple(error.get("loc", ()))
        if not loc or loc[0] != "body":
            return None
        name = field_name(loc) if len(loc) > 1 else ""
        problems.append(Problem(name, problem_rule(error), problem_text(error)))
    return tuple(problems)


def service_problems(
    spec: FormSpec, error: SandboxError, entered: Mapping[str, tuple[str, ...]]
) -> tuple[Problem, ...] | None:
    """The fields a service's refusal concerns; ``None`` when its rule is not the form's
    (rule ``*`` stands for every other rule: the form's page shows any refusal)."""
    if error.rule not in spec.rules and ANY_RULE not in spec.rules:
        return None
    target = spec.rules.get(error.rule, spec.rules.get(ANY_RULE))
    if target is None:
        return ()
    if isinstance(target, Required):
        blank = [f for f in target.fields if not "".join(entered.get(f, ())).strip()]
        return tuple(Problem(f, "required", "required") for f in blank)
    return (Problem(target, error.rule, error.message, error.article),)


def refusal_of(
    spec: FormSpec,
    path_params: Mapping[str, str],
    form: FormData,
    error: SandboxError,
    errors: Iterable[Mapping[str, Any]] | None = None,
) -> Refusal | None:
    """The refusal to show the form with, or ``None`` when the form cannot help (the rule
    is not about its fields): the caller then shows the refusal on its own page."""
    entered = entered_values(form)
    if errors is not None:
        problems = validation_problems(errors)
    else:
        problems = service_problems(spec, error, entered)
    if problems is None:
        return None
    single = {k: v[0] for k, v in entered.items() if v}
    query = {k: single[k] for k in spec.query if single.get(k)}
    return Refusal(
        spec=spec,
        form=spec.form.format_map({**single, **path_params}),
        error=error,
        problems=problems,
        entered=entered,
        path=spec.page.format_map(path_params),
        query=urlencode(query),
        invalid_input=errors is not None,
    )


class FormView:
    """One form of a page, as its template fills it in: the values (the entered ones when
    this form was refused, else the defaults the page gives) and its problems. A page that
    caught a refusal itself passes it as ``error``: it is shown with the page's values."""

    def __init__(
        self,
        refusal: Refusal | None,
        form: str | None,
        lang: str,
        error: SandboxError | None = None,
    ):
        """``form`` None: whichever form of the page was refused (for a page that shows a
        refusal no form of it claims)."""
        matches = refusal is not None and form in (None, refusal.form)
        self.refusal = refusal if matches else None
        self.form = form or (refusal.form if refusal else "")
        self.lang = lang
        self._error = error

    @property
    def error(self) -> SandboxError | None:
        return self.refusal.error if self.refusal else self._error

    @property
    def all_problems(self) -> tuple[Problem, ...]:
        return self.refusal.problems if self.refusal else ()

    @property
    def invalid_input(self) -> bool:
        return self.refusal is not None and self.refusal.invalid_input

    def value(self, name: str, default: object = "") -> object:
        """The entered value (empty when the field was left out), else ``default``."""
        if self.refusal is None:
            return "" if default is None else default
        return next(iter(self.refusal.entered.get(name, ())), "")

    def values(self, name: str, default: Iterable[object] = ()) -> list[object]:
        """Every entered value of a multiple field (checkboxes), else ``default``."""
        if self.refusal is None:
            return list(default or ())
        return list(self.refusal.entered.get(name, ()))

    def problems(self, name: str) -> list[Problem]:
        """The problems of field ``name`` and of its items (``columns`` has ``columns[0]``)."""
        if self.refusal is None:
            return []
        return [
            p
            for p in self.refusal.problems
            if p.field == name or p.field.startswith((f"{name}[", f"{name}."))
        ]

    def problem_id(self, name: str) -> str:
        return f"{self.form}-{name}-problem"

    def attrs(self, name: str) -> Markup:
        """``aria-invalid`` and ``aria-describedby`` for the field's input, when refused."""
        if not self.problems(name):
            return Markup("")
        return Markup(' aria-invalid="true" aria-describedby="{}"').format(self.problem_id(name))

    def text(self, problem: Problem) -> tuple[str, bool]:
        """The problem in the page's language, and whether it had to stay in English."""
        said = say(problem.rule, problem.message, self.lang)
        if said is None or (self.lang != "en" and said == problem.message):
            said = say("phrase", problem.message, self.lang)
        return (said, True) if said is not None else (problem.message, False)

    def message(self, problem: Problem) -> Markup:
        text, translated = self.text(problem)
        if translated:
            return Markup("{}").format(text)
        return Markup('<span lang="en" data-untranslated>{}</span>').format(text)

    def error_for(self, name: str) -> Markup:
        """The field's problems, beside it (the summary at the form's top links here)."""
        found = self.problems(name)
        if not found:
            return Markup("")
        parts = Markup("; ").join(self.message(p) for p in found)
        return Markup('<span class="field-error" id="{}">{}</span>').format(
            self.problem_id(name), parts
        )

    def label(self, problem: Problem) -> Markup:
        """The field's label as the form shows it; an unlabelled field by its name."""
        base = problem.field.split("[")[0].split(".")[0]
        key = self.refusal.spec.labels.get(base, base) if self.refusal else base
        if key in MESSAGES:
            return translator(self.lang)(key)
        return Markup("<code>{}</code>").format(problem.field or "—")

    def anchor(self, problem: Problem) -> str:
        """Where the summary's link goes: the problem beside its field."""
        return f"#{self.problem_id(problem.field)}"
