"""The fixed vocabulary of the demo generator: models, sources, teams, names and phrases.

Every string here is plain text without quotes, backslashes, tabs or newlines, so the
generator can put it into JSON and COPY lines without escaping.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Model:
    provider: str
    name: str
    endpoint: str
    ttft_ms: float  # median time to first token
    tokens_per_s: float  # median output speed
    output_median: float  # median output tokens of a completed answer
    failure_rate: float
    weight: float  # share of runs using it (before team preferences)
    tier: str  # "premium", "standard" or "cheap": teams lean to one
    reasoning: bool = False
    caching: bool = True


MODELS = (
    Model("openai", "gpt-4o", "/v1/chat/completions", 550, 85, 380, 0.018, 10, "standard"),
    Model("openai", "gpt-4o-mini", "/v1/chat/completions", 340, 125, 290, 0.015, 13, "cheap"),
    Model("openai", "gpt-4.1", "/v1/responses", 600, 80, 420, 0.02, 7, "standard"),
    Model("openai", "gpt-5", "/v1/responses", 1900, 70, 720, 0.024, 7, "premium", True),
    Model("openai", "gpt-5-mini", "/v1/responses", 1100, 110, 520, 0.02, 8, "cheap", True),
    Model("openai", "o4-mini", "/v1/responses", 2400, 100, 610, 0.03, 3, "standard", True),
    Model("anthropic", "claude-sonnet-4-5", "/v1/messages", 880, 66, 520, 0.022, 12, "standard"),
    Model("anthropic", "claude-haiku-4-5", "/v1/messages", 430, 140, 300, 0.018, 6, "cheap"),
    Model("anthropic", "claude-opus-4-1", "/v1/messages", 1600, 38, 650, 0.03, 2.5, "premium"),
    Model("google", "gemini-2.5-flash", "streamGenerateContent", 410, 190, 400, 0.02, 8, "cheap"),
    Model("google", "gemini-2.5-pro", "streamGenerateContent", 1700, 85, 650, 0.03, 3.5, "premium"),
    Model(
        "mistral",
        "mistral-large",
        "/v1/chat/completions",
        650,
        70,
        380,
        0.025,
        2.5,
        "standard",
        caching=False,
    ),
    Model(
        "mistral", "mistral-medium-latest", "/v1/chat/completions", 520, 95, 350, 0.022, 2, "cheap"
    ),
    # Real or in-house models genai-prices has no price for: their cost is NULL.
    Model(
        "mistral",
        "codestral",
        "/v1/fim/completions",
        290,
        160,
        240,
        0.02,
        2.5,
        "cheap",
        caching=False,
    ),
    Model(
        "internal",
        "support-llama-3.1-ft",
        "/v1/chat/completions",
        780,
        55,
        300,
        0.06,
        2,
        "cheap",
        caching=False,
    ),
    Model(
        "ollama",
        "qwen2.5-coder:14b",
        "/api/chat",
        1150,
        35,
        330,
        0.045,
        1.2,
        "cheap",
        caching=False,
    ),
)
# The model that gets markedly slower over the last week (the dashboard's story).
# The demo's code for each task status (arrays hold the index): ingest.store.vocabulary's
# TASK_STATUSES, ordered from most to least frequent.
TASK_STATUS_CODES = ("completed", "failed", "cancelled", "streaming", "pending")

DRIFTING_MODEL = "claude-sonnet-4-5"
DRIFT_TTFT_FACTOR = 2.6
DRIFT_SPEED_FACTOR = 1.8

TEAMS = ("platform", "support", "growth", "research", "finance", "legal")
# How much each team prefers each model tier.
TEAM_TIER_BIAS = {
    "platform": {"premium": 1.0, "standard": 1.2, "cheap": 1.0},
    "support": {"premium": 0.2, "standard": 0.7, "cheap": 2.5},
    "growth": {"premium": 0.6, "standard": 1.4, "cheap": 1.2},
    "research": {"premium": 3.0, "standard": 1.0, "cheap": 0.5},
    "finance": {"premium": 0.8, "standard": 1.3, "cheap": 0.8},
    "legal": {"premium": 1.8, "standard": 1.0, "cheap": 0.4},
}
FIRST_NAMES = (
    "Ava",
    "Ben",
    "Chloe",
    "Daniel",
    "Elena",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kira",
    "Liam",
    "Maya",
    "Noah",
    "Olga",
    "Priya",
    "Quentin",
    "Rosa",
    "Sam",
    "Tariq",
    "Uma",
    "Victor",
    "Wen",
    "Ximena",
    "Yusuf",
    "Zoe",
)
LAST_NAMES = (
    "Adams",
    "Brandt",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Haddad",
    "Ito",
    "Jansen",
    "Kowalski",
    "Lopez",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Quinn",
    "Rossi",
    "Silva",
    "Tanaka",
    "Ueda",
    "Varga",
    "Weber",
    "Xu",
    "Yilmaz",
    "Zhang",
)


@dataclass(frozen=True)
class Source:
    source_type: str
    service: str
    task_names: tuple[str, ...]
    weight: float  # share of runs
    tasks_mean: float  # mean tasks per run (geometric)
    think_s: float  # median seconds between the end of one task and the next
    input_median: float  # median input tokens of the first task
    cancel_rate: float
    items: tuple[str, ...]  # the prompts / applets / workflows ... it runs (source_id)


SOURCES = (
    Source(
        "chat",
        "chat_service",
        ("direct_chat",),
        0.34,
        4.0,
        45,
        650,
        0.03,
        ("general", "engineering-help", "writing-assistant", "data-questions"),
    ),
    Source(
        "prompt",
        "prompt_service",
        ("run_prompt",),
        0.24,
        1.6,
        80,
        1800,
        0.015,
        (
            "summarize-ticket",
            "draft-marketing-email",
            "explain-sql",
            "translate-copy",
            "write-unit-tests",
            "meeting-notes",
            "release-notes",
            "contract-clauses",
        ),
    ),
    Source(
        "applet",
        "applet_service",
        ("applet_step", "applet_finalize"),
        0.14,
        1.4,
        4,
        2500,
        0.01,
        ("lead-enricher", "invoice-reader", "faq-bot", "resume-screener"),
    ),
    Source(
        "cockpit",
        "cockpit_service",
        ("cockpit_run", "compare_models"),
        0.08,
        3.0,
        60,
        3400,
        0.025,
        ("prompt-lab", "eval-console", "system-prompt-tuner"),
    ),
    Source(
        "workflow",
        "workflow_engine",
        ("extract_entities", "summarize", "classify", "draft_reply", "review"),
        0.10,
        4.0,
        0.4,
        2200,
        0.008,
        ("support-triage", "weekly-report", "doc-ingest", "churn-digest"),
    ),
    Source(
        "custom",
        "custom_integration",
        ("custom_call", "batch_classify"),
        0.10,
        1.5,
        20,
        900,
        0.012,
        ("slack-bot", "crm-sync", "nightly-batch"),
    ),
)

TAGS = (
    "customer-support",
    "marketing",
    "code-review",
    "research",
    "finance",
    "legal",
    "onboarding",
    "experiment",
    "production",
    "eval",
    "urgent",
    "internal",
)
CLIENTS = ("web", "web", "web", "api", "slack", "cli")
TONES = ("friendly", "formal", "concise", "persuasive", "neutral")
AUDIENCES = ("customers", "executives", "engineers", "partners", "new hires")
TOPICS = (
    "quarterly revenue",
    "API rate limits",
    "the onboarding flow",
    "database indexing",
    "GDPR compliance",
    "a pricing change",
    "the mobile release",
    "vendor contracts",
    "incident postmortems",
    "churn drivers",
    "hiring plans",
    "cloud spend",
)
VERBS = ("debug", "optimize", "refactor", "test", "document", "deploy", "monitor", "migrate")
THINGS = (
    "a Postgres query",
    "a React component",
    "a Python service",
    "a CI pipeline",
    "a Kubernetes job",
    "a data model",
    "an API endpoint",
    "a Spark job",
)
QUESTIONS = (
    "How do I {verb} {thing}?",
    "Can you explain {topic} in simple terms?",
    "Write a {tone} summary of {topic} for {audience}.",
    "What are the risks of changing {topic}?",
    "Give me a checklist to {verb} {thing}.",
    "Draft a {tone} email to {audience} about {topic}.",
    "Compare two ways to {verb} {thing}.",
    "List the open questions about {topic}.",
)
ANSWER_OPENINGS = (
    "Here is a short overview.",
    "Sure, let us go step by step.",
    "Good question.",
    "Below is a draft you can adapt.",
    "There are three things to consider.",
)
ANSWER_BODIES = (
    "First, check how {topic} affects {audience} and note the main constraints.",
    "Start small: {verb} {thing} behind a flag and measure the impact.",
    "The key trade-off is speed against cost; keep an eye on {topic}.",
    "A {tone} tone works best here, with one clear call to action.",
    "Write down the assumptions, then test each of them against real data.",
)
ANSWER_CLOSINGS = (
    "Let me know if you want more detail.",
    "I can turn this into a table if useful.",
    "Happy to refine it further.",
    "",
)
ERRORS = (
    # (type, HTTP status, message, retryable, happens before the first token)
    ("rate_limit_error", 429, "Rate limit reached for requests per minute", True, True),
    ("overloaded_error", 529, "The model is overloaded, please retry later", True, True),
    ("timeout", 504, "Upstream request timed out", True, False),
    ("context_length_exceeded", 400, "Input is longer than the model context window", False, True),
    ("server_error", 500, "The server had an error while processing the request", True, False),
    ("content_filter", 400, "The response was blocked by the content filter", False, False),
    ("stream_interrupted", 502, "The stream was interrupted before completion", True, False),
)
ATTACHMENTS = {
    "file": (
        '{"kind":"file","name":"%s","mime_type":"%s","size":%d}',
        (
            ("quarterly-report.pdf", "application/pdf"),
            (
                "notes.docx",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            ),
            ("export.csv", "text/csv"),
            ("spec.md", "text/markdown"),
        ),
    ),
    "url": '{"kind":"url","url":"https://docs.example.com/%s","title":"%s"}',
    "image": '{"kind":"image","name":"screenshot-%d.png","mime_type":"image/png",'
    '"width":%d,"height":%d}',
    "youtube": '{"kind":"youtube","url":"https://www.youtube.com/watch?v=%s","video_id":"%s",'
    '"title":"%s"}',
}
YOUTUBE_IDS = ("dQw4w9WgXcQ", "aircAruvnKk", "kCc8FmEb1nY", "zjkBMFhNj_g", "wjZofJX0v4M")
URL_PAGES = (
    ("pricing", "Pricing"),
    ("api/limits", "API limits"),
    ("guides/onboarding", "Onboarding guide"),
    ("blog/launch", "Launch post"),
)
TOOLS = ("web_search", "code_interpreter", "retrieve_documents", "crm_lookup", "send_email")
REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1")
