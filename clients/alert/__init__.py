"""``livesim alert``: follow a stream and fire rules on posts, once per post and rule.

An alerting client to copy from. It is built on ``tail.Follower`` (snapshot, resume from the last
id across faults, reload on ``stream.reset``) and adds:

- **Rules** (TOML, validated with pydantic; see ``config/alerts.toml``): every condition a rule
  gives must hold — ``keywords`` (any of them, whole words, case-insensitive), ``pattern`` (a
  regular expression, case-insensitive), both searched in ``fields`` (headline and body);
  ``source`` (the agency, any of them); ``types`` (the event types it looks at, default
  ``post.created`` and ``post.updated``; ``["post.deleted"]`` fires on any deletion); ``number``
  (a number pulled from the text compared with ``at_least`` / ``at_most``, see
  ``number_near``).
- **Once per post and rule**: the key is ``(rule, post id)``, never the event id, so a
  reconnect, a reset's reloaded snapshot or the next loop lap (new event ids, same posts) does
  not fire it again.
- **Actions**: a JSON line on stdout, always; a webhook POST (aiohttp, timeout, retries with
  exponential backoff by tenacity); a ``command`` run with the alert JSON on stdin (with a
  timeout). An action that finally fails is reported as one line on stderr and as a JSON line
  ``{"error": …}`` on stdout, and the alerter goes on.
- **Lateness**: each alert records ``lateness_ms`` = when it fired − the event's ``due_at``.

One module per job: ``rules`` (the TOML file and its models), ``matching`` (a rule against a
post, numbers in text), ``actions`` (webhook, command, stdout), ``runner`` (``Alerter``: once
per post and rule; ``run_alert``: the follow loop).
"""

from .actions import Actions, print_error, print_line
from .matching import CompiledRule, number_near
from .rules import MAX_RULES_BYTES, NumberRule, Rule, RulesFile, Webhook, compile_rules, load_rules
from .runner import Alerter, run_alert

__all__ = [
    "MAX_RULES_BYTES",
    "Actions",
    "Alerter",
    "CompiledRule",
    "NumberRule",
    "Rule",
    "RulesFile",
    "Webhook",
    "compile_rules",
    "load_rules",
    "number_near",
    "print_error",
    "print_line",
    "run_alert",
]
