"""Teacher-LLM expert sources: ask a teacher model every training question once, cache the answers.

The paper's experts 1 and 2 learn from the trajectories of teacher LLMs (DeepSeek-R1,
Doubao-1.5-thinking). ``meml teacher --dataset D --expert K`` runs the teacher configured as
``experts.sources[K]`` over the training pool of ``D`` (:func:`run_teacher`) into a JSON Lines cache
(:func:`meml.paths.teacher_file`); the ``experts`` stage then reads that cache like any other source
(:class:`meml.experts.sources.CachedTeacherSource`) and applies ``experts.filter_incorrect``.

Two kinds of teacher:

* ``kind: openai`` (:class:`OpenAITeacher`): any OpenAI-compatible ``/chat/completions`` endpoint
  (DeepSeek, Doubao/Volcengine Ark, OpenRouter, a local ``vllm serve``), asked through the ``openai``
  package (the ``teachers`` extra). Requests run in a thread pool of ``max_concurrency``; the client
  retries connection errors, timeouts and HTTP 408/409/429/5xx ``max_retries`` times with exponential
  backoff and jitter, honouring ``Retry-After``; a malformed reply is asked again up to ``max_retries``
  times; any other 4xx fails the question at once.
* ``kind: local`` (:class:`LocalTeacher`): a model folder or hub id generated in-process, with the
  model's chat template, by ``backend: transformers`` (batched ``generate``) or ``backend: vllm``.

What is kept of an answer (:func:`trajectory_of`):

* Reasoning models return their chain of thought in ``<think>...</think>`` inside ``content`` (or
  before a lone ``</think>`` when the chat template opened the block), or in a separate
  ``reasoning_content`` (DeepSeek) / ``reasoning`` field. The reasoning is always stored in the cache
  row, but by default (``reasoning: drop``) it is *not* part of the trajectory: the answer text of a
  reasoning model is already a complete step-by-step solution, of the length the expert's SFT data
  and the RL completion budget are sized for, while the raw thought is many times longer and full
  of false starts. ``reasoning: keep`` prepends it.
* The trajectory always ends with the shared ``#### <answer>`` line (:data:`meml.records.ANSWER_LINE`)
  when :func:`meml.rewards.extract_answer` finds an answer (``\\boxed{42}``, "The answer is (c)", ...),
  so SFT on teacher data teaches the format the RL reward and the evaluation read. An answer with no
  extractable final answer is kept as is and scored ``correct: 0.0``.

Cache rows (one per finished question, appended and fsynced as each answer arrives):
``{"id", "expert", "model", "content", "reasoning", "completion", "finish_reason", "usage", "correct"}``
where ``completion`` is the trajectory and ``correct`` is :func:`meml.rewards.accuracy_reward`. A rerun
skips the ids already cached, so a killed run resumes; questions that failed after their retries are
not cached and are asked again by the next run.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from meml.records import ANSWER_LINE, Record, task_of

log = logging.getLogger(__name__)

TEACHER_KINDS = ("openai", "local")

_COMMON_KEYS = {"kind", "model", "temperature", "top_p", "max_tokens", "reasoning", "system_prompt",
                "prompt_template"}
_KIND_KEYS = {
    "openai": _COMMON_KEYS | {"base_url", "api_key_env", "max_concurrency", "max_retries", "timeout_s",
                              "extra_body"},
    "local": _COMMON_KEYS | {"backend", "batch_size", "dtype", "gpus"},
}
_REQUIRED = {"openai": ("base_url", "model"), "local": ("model",)}

DEFAULTS = {
    "api_key_env": "OPENAI_API_KEY",
    "max_concurrency": 8,
    "max_retries": 5,
    "timeout_s": 600.0,  # reasoning models may think for minutes before the first byte
    "temperature": 0.6,  # DeepSeek-R1's recommended sampling temperature; openai null: not sent
    "top_p": None,  # None: the server's / the model's default
    "max_tokens": None,  # openai: the server's default; local: LOCAL_MAX_TOKENS
    "reasoning": "drop",
    "system_prompt": None,
    "prompt_template": None,  # None: DEFAULT_PROMPTS[task]
    "backend": "transformers",
    "batch_size": 8,
    "dtype": "auto",
    "gpus": 1,
    "extra_body": {},
}
LOCAL_MAX_TOKENS = 1024
_RETIRED_KEYS = {"retry_base_s": "the openai client's own backoff is used (0.5 s, doubling to 8 s, with jitter; "
                                 "Retry-After honoured); remove the key"}

DEFAULT_PROMPTS = {
    "gsm8k": "Solve the following math word problem step by step. End your answer with a final line of the "
             "form \"#### <answer>\", where <answer> is the final number only (no units, no commas).\n\n{question}",
    "mathqa": "Solve the following multiple-choice math problem step by step. End your answer with a final line "
              "of the form \"#### <letter>\", where <letter> is the letter (a, b, c, d or e) of the correct "
              "option.\n\n{question}",
    "strategyqa": "Answer the following yes/no question, reasoning step by step. End your answer with a final "
                  "line of the form \"#### yes\" or \"#### no\".\n\n{question}",
}
"""User-message template per benchmark family; ``{question}`` is :attr:`Record.question` (MathQA's
includes its ``Options:`` line). The final line matches the gold rationales' ``#### <answer>``."""


def spec_problem(spec: Mapping) -> str | None:
    """What is wrong with a teacher source mapping (None when nothing): required and kind-specific keys."""
    kind = spec.get("kind")
    if kind not in TEACHER_KINDS:
        return f"kind {kind!r} is not a teacher kind {TEACHER_KINDS}"
    source = f"{'an' if kind == 'openai' else 'a'} {kind} source"
    missing = [k for k in _REQUIRED[kind] if not spec.get(k)]
    if missing:
        return f"{source} needs {' and '.join(repr(k) for k in _REQUIRED[kind])} (missing {missing})"
    retired = sorted(set(spec) & set(_RETIRED_KEYS))
    if retired:
        return f"{retired[0]} is no longer read: {_RETIRED_KEYS[retired[0]]}"
    foreign = sorted(set(spec) - _KIND_KEYS[kind])
    if foreign:
        return f"{foreign} do not apply to {source}"
    template = spec.get("prompt_template")
    if template is not None and "{question}" not in template:
        return "prompt_template must contain '{question}'"
    return None


def _setting(spec: Mapping, key: str):
    """``spec[key]``, or its default when the key is absent (an explicit null stays None)."""
    return spec[key] if key in spec else DEFAULTS[key]


def build_messages(spec: Mapping, record: Record) -> list[dict]:
    """Chat messages sent for one record: optional ``system_prompt``, then the filled user template."""
    template = spec.get("prompt_template") or DEFAULT_PROMPTS[task_of(record.task)]
    messages = [{"role": "system", "content": spec["system_prompt"]}] if spec.get("system_prompt") else []
    messages.append({"role": "user", "content": template.replace("{question}", record.question)})
    return messages


# --------------------------------------------------------------------------- answers

_THINK_BLOCK = re.compile(r"<think>(.*?)</think>", re.DOTALL)


def split_reasoning(content: str, reasoning_field: str | None = None) -> tuple[str, str]:
    """``(answer text, reasoning)`` of a reply.

    Reasoning is the separate field (``reasoning_content`` / ``reasoning``), every ``<think>...</think>``
    block of ``content``, text before a lone ``</think>`` (the chat template opened the block) and text
    after an unclosed ``<think>`` (the reply was cut off while thinking).
    """
    parts = [reasoning_field.strip()] if reasoning_field and reasoning_field.strip() else []
    parts += [m.group(1).strip() for m in _THINK_BLOCK.finditer(content)]
    answer = _THINK_BLOCK.sub("", content)
    if "</think>" in answer:
        before, _, answer = answer.rpartition("</think>")
        parts.append(before.replace("<think>", "").strip())
    if "<think>" in answer:
        answer, _, after = answer.partition("<think>")
        parts.append(after.strip())
    return answer.strip(), "\n\n".join(p for p in parts if p)


def ensure_answer_line(task: str, text: str, options: str | None = None) -> str:
    """``text`` ending with the ``#### <answer>`` line: appended when an answer is found but the last line
    is not already a ``####`` line carrying it; ``text`` unchanged when no answer can be extracted."""
    from meml.rewards import extract_answer

    text = text.strip()
    answer = extract_answer(task, text, options or None)
    if answer is None:
        return text
    last = text.rsplit("\n", 1)[-1].strip()
    if last.startswith("####") and extract_answer(task, last, options or None) == answer:
        return text
    return f"{text}\n{ANSWER_LINE}{answer}"


def trajectory_of(task: str, answer: str, reasoning: str, keep_reasoning: bool, options: str | None = None) -> str:
    """The expert trajectory of one reply: the answer text ending in ``#### <answer>``, optionally after
    the reasoning."""
    trajectory = ensure_answer_line(task, answer, options)
    if keep_reasoning and reasoning:
        trajectory = f"{reasoning}\n\n{trajectory}" if trajectory else reasoning
    return trajectory


@dataclass
class TeacherReply:
    """One finished teacher answer, as the endpoint or the local model returned it."""

    content: str
    reasoning: str | None = None
    finish_reason: str | None = None
    usage: dict | None = None


class TeacherError(RuntimeError):
    """A question the teacher could not answer (after its retries, or at once for a client error)."""


# --------------------------------------------------------------------------- OpenAI-compatible endpoint

RETRIED_STATUS = (408, 409, 429)
"""HTTP statuses the ``openai`` client retries, besides every 5xx."""


def _reply_of(completion) -> TeacherReply:
    """A :class:`TeacherReply` from an ``openai`` ``ChatCompletion``; ValueError when it holds no message."""
    try:
        choice = completion.choices[0]
        message = choice.message
        content = message.content or ""
        reasoning = getattr(message, "reasoning_content", None) or getattr(message, "reasoning", None)
    except (IndexError, AttributeError, TypeError) as err:
        raise ValueError(f"no message in the reply ({type(err).__name__}: {err})") from None
    if not isinstance(content, str) or not isinstance(reasoning, (str, type(None))):
        raise ValueError("content/reasoning is not a string")
    usage = completion.usage.model_dump(exclude_none=True) if getattr(completion, "usage", None) else None
    return TeacherReply(content, reasoning, choice.finish_reason, usage)


class OpenAITeacher:
    """A teacher behind an OpenAI-compatible ``/chat/completions`` endpoint (``kind: openai``), asked through the
    ``openai`` package: it retries connection errors, timeouts and HTTP 408/409/429/5xx ``max_retries`` times
    with exponential backoff, honouring ``Retry-After``. A reply that is not a chat completion (a body cut off by
    a proxy, no choices) is asked again at once, also up to ``max_retries`` times.

    Args:
        spec: the ``experts.sources[k]`` mapping (keys and defaults: :data:`DEFAULTS`).
        where: the config key of ``spec`` for error messages, e.g. ``experts.sources[1]``.

    Raises:
        ValueError: when ``api_key_env`` names an unset environment variable.
        ImportError: when the ``openai`` package is missing.
    """

    def __init__(self, spec: Mapping, where: str = "teacher"):
        try:
            import openai
        except ImportError:
            raise ImportError(f"{where}: kind openai needs the openai package: pip install 'meml-grpo[teachers]'") \
                from None
        self.model = spec["model"]
        self.url = spec["base_url"].rstrip("/") + "/chat/completions"
        self.max_concurrency = int(_setting(spec, "max_concurrency"))
        self.max_retries = int(_setting(spec, "max_retries"))
        fields = {"temperature": _setting(spec, "temperature"), "top_p": _setting(spec, "top_p"),
                  "max_tokens": _setting(spec, "max_tokens")}
        self.fields = {k: v for k, v in fields.items() if v is not None}
        self.extra_body = dict(spec.get("extra_body") or {})
        self.extra_headers = {}
        env = _setting(spec, "api_key_env")
        key = None
        if env is not None:
            key = os.environ.get(env)
            if not key:
                raise ValueError(f"{where}.api_key_env: environment variable {env} is not set; export it with the "
                                 f"API key of {spec['base_url']}, or set api_key_env: null for a server without a key")
        else:  # a server without a key (a local `vllm serve`): no Authorization header at all
            self.extra_headers["Authorization"] = openai.Omit()
        self._openai = openai
        self.client = openai.OpenAI(base_url=spec["base_url"], api_key=key or "no-key",
                                    timeout=float(_setting(spec, "timeout_s")), max_retries=self.max_retries)

    def complete(self, messages: list[dict]) -> TeacherReply:
        """The reply to ``messages``; :class:`TeacherError` once the retries are spent, or at once for a client
        error (a 4xx other than 408/409/429)."""
        openai = self._openai
        gave_up = f"(gave up after {self.max_retries + 1} attempt(s))"
        for attempt in range(self.max_retries + 1):
            try:
                completion = self.client.chat.completions.create(
                    model=self.model, messages=messages, extra_body=self.extra_body or None,
                    extra_headers=self.extra_headers or None, **self.fields)
                return _reply_of(completion)
            except openai.APIStatusError as err:
                message = f"HTTP {err.status_code} from {self.url}: {err.message}"
                retried = err.status_code in RETRIED_STATUS or err.status_code >= 500
                raise TeacherError(f"{message} {gave_up}" if retried else message) from None
            except openai.APIConnectionError as err:  # timeouts included
                raise TeacherError(f"{type(err).__name__} from {self.url}: {err} {gave_up}") from None
            except ValueError as err:  # malformed JSON, or JSON that is not a chat completion
                problem = f"malformed reply from {self.url}: {err}"
                log.debug("%s (attempt %d)", problem, attempt + 1)
        raise TeacherError(f"{problem} {gave_up}")

    def generate(self, jobs: Sequence[tuple[str, list[dict]]]) -> Iterator[tuple[str, TeacherReply | TeacherError]]:
        """``(id, reply or error)`` for every ``(id, messages)`` job, in completion order, with at most
        ``max_concurrency`` requests in flight. Worker threads only do HTTP; the caller consumes the
        results in its own thread. Closing the iterator early cancels the questions not yet started (those in
        flight finish first)."""
        with ThreadPoolExecutor(max_workers=self.max_concurrency, thread_name_prefix="teacher") as pool:
            futures = {pool.submit(self.complete, messages): job_id for job_id, messages in jobs}
            try:
                for future in as_completed(futures):
                    try:
                        yield futures[future], future.result()
                    except TeacherError as err:
                        yield futures[future], err
            finally:
                for future in futures:
                    future.cancel()


# --------------------------------------------------------------------------- local model


def _eos_ids(tokenizer, model) -> set[int]:
    """Token ids that end a generated answer (the tokenizer's and the generation config's)."""
    configured = model.generation_config.eos_token_id
    configured = [configured] if isinstance(configured, int) else list(configured or [])
    return {t for t in [tokenizer.eos_token_id, *configured] if t is not None}


class LocalTeacher:
    """A teacher model generated in-process (``kind: local``) with its chat template.

    ``backend: transformers`` runs batched ``generate`` (GPU when available; with ``gpus`` > 1 the layers are
    spread over the GPUs); ``backend: vllm`` needs the ``gpu`` extra and runs tensor parallel over ``gpus``. Sampling: ``temperature`` (0: greedy), ``top_p``, ``max_tokens`` (default
    :data:`LOCAL_MAX_TOKENS`); ``batch_size`` questions per call, cached after each batch.
    """

    def __init__(self, spec: Mapping, where: str = "teacher", seed: int = 0):
        self.model = spec["model"]
        self.backend = _setting(spec, "backend")
        self.batch_size = int(_setting(spec, "batch_size"))
        temperature = _setting(spec, "temperature")
        self.temperature = float(DEFAULTS["temperature"] if temperature is None else temperature)
        self.top_p = _setting(spec, "top_p")
        self.max_tokens = int(_setting(spec, "max_tokens") or LOCAL_MAX_TOKENS)
        self.dtype = _setting(spec, "dtype")
        self.gpus = int(_setting(spec, "gpus"))
        self.seed = seed
        if self.backend == "vllm":
            try:
                import vllm  # noqa: F401
            except ImportError:
                raise ValueError(f"{where}.backend: vllm is not installed; install the gpu extra "
                                 "(pip install -e '.[gpu]') or use backend: transformers") from None
        elif self.backend != "transformers":
            raise ValueError(f"{where}.backend: {self.backend!r} unknown; expected transformers or vllm")
        self._engine = None

    def _transformers_batch(self, conversations: list[list[dict]]) -> list[TeacherReply]:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if self._engine is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
            tokenizer = AutoTokenizer.from_pretrained(self.model, padding_side="left")
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
            dtype = self.dtype if self.dtype == "auto" else getattr(torch, self.dtype)
            if device == "cuda" and self.gpus > 1:  # the layers spread over the job's GPUs (accelerate)
                model = AutoModelForCausalLM.from_pretrained(self.model, dtype=dtype, device_map="auto").eval()
                device = model.device
            else:
                model = AutoModelForCausalLM.from_pretrained(self.model, dtype=dtype).to(device).eval()
            torch.manual_seed(self.seed)
            self._engine = (tokenizer, model, device)
        tokenizer, model, device = self._engine
        texts = [tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in conversations]
        inputs = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        sampling = {"do_sample": False}
        if self.temperature > 0:
            sampling = {"do_sample": True, "temperature": self.temperature, "top_p": self.top_p or 1.0, "top_k": 0}
        with torch.no_grad():
            output = model.generate(**inputs, max_new_tokens=self.max_tokens, pad_token_id=tokenizer.pad_token_id,
                                    **sampling)
        prompt_length = inputs["input_ids"].shape[1]
        eos = _eos_ids(tokenizer, model)
        replies = []
        for row, mask in zip(output, inputs["attention_mask"]):
            new = row[prompt_length:].tolist()
            stop = next((i for i, token in enumerate(new) if token in eos), None)
            if stop is not None:  # what follows the first end token is padding
                new = new[:stop]
            replies.append(TeacherReply(tokenizer.decode(new, skip_special_tokens=True),
                                        finish_reason="length" if stop is None else "stop",
                                        usage={"prompt_tokens": int(mask.sum()), "completion_tokens": len(new)}))
        return replies

    def _vllm_batch(self, conversations: list[list[dict]]) -> list[TeacherReply]:
        from vllm import LLM, SamplingParams

        if self._engine is None:
            self._engine = LLM(model=self.model, dtype=self.dtype, seed=self.seed, tensor_parallel_size=self.gpus)
        params = SamplingParams(temperature=self.temperature, top_p=self.top_p or 1.0, max_tokens=self.max_tokens)
        replies = []
        for out in self._engine.chat(conversations, params, use_tqdm=False):
            best = out.outputs[0]
            replies.append(TeacherReply(best.text, finish_reason=best.finish_reason,
                                        usage={"prompt_tokens": len(out.prompt_token_ids or []),
                                               "completion_tokens": len(best.token_ids)}))
        return replies

    def generate(self, jobs: Sequence[tuple[str, list[dict]]]) -> Iterator[tuple[str, TeacherReply | TeacherError]]:
        """``(id, reply)`` for every ``(id, messages)`` job, ``batch_size`` at a time."""
        batch = self._vllm_batch if self.backend == "vllm" else self._transformers_batch
        for start in range(0, len(jobs), self.batch_size):
            chunk = jobs[start:start + self.batch_size]
            yield from zip([job_id for job_id, _ in chunk], batch([messages for _, messages in chunk]))


def teacher_resources(spec: Mapping, compute) -> dict[str, int]:
    """What the teacher job of ``spec`` declares to Snakemake: ``gpu``, ``mem_mb`` and ``cpus_per_task`` (the Slurm
    executor's CPUs). An API teacher only waits on the network: no GPU, 2 CPUs, 4 GB. A local teacher model takes
    its ``gpus`` (when ``compute.device`` is cuda), 16 CPUs and ``compute.mem_mb_per_job``."""
    if spec.get("kind") != "local":
        return {"gpu": 0, "mem_mb": 4000, "cpus_per_task": 2}
    return {"gpu": int(_setting(spec, "gpus")) if compute.device == "cuda" else 0, "mem_mb": compute.mem_mb_per_job,
            "cpus_per_task": 16}


def make_teacher(spec: Mapping, where: str = "teacher", seed: int = 0) -> OpenAITeacher | LocalTeacher:
    """The client of a teacher source mapping (``kind: openai`` or ``kind: local``)."""
    problem = spec_problem(spec)
    if problem:
        raise ValueError(f"{where}: {problem}")
    return OpenAITeacher(spec, where) if spec["kind"] == "openai" else LocalTeacher(spec, where, seed)


# --------------------------------------------------------------------------- cache


@dataclass
class _Cache:
    rows: dict[str, dict] = field(default_factory=dict)
    valid_bytes: int = 0  # length of the file without a truncated last line


def _scan_cache(path: Path, model: str | None = None) -> _Cache:
    cache = _Cache()
    if not path.exists():
        return cache
    data = path.read_bytes()
    lines = data.split(b"\n")
    offset = 0
    for lineno, line in enumerate(lines, 1):
        last = lineno == len(lines)
        if last and not line:
            break
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or "id" not in row or "completion" not in row:
                raise ValueError("not a cache row: needs 'id' and 'completion'")
        except ValueError as err:
            if last:  # no newline after it: a write cut off by a kill
                log.warning("%s:%d: ignoring a truncated last line (an interrupted write); it is asked again",
                            path, lineno)
                break
            raise ValueError(f"{path}:{lineno}: corrupt teacher cache line ({err}); remove that line to ask the "
                             "question again") from None
        if model is not None and row.get("model") != model:
            raise ValueError(f"{path}:{lineno}: answer of model {row.get('model')!r}, but the source's model is "
                             f"{model!r}; move the cache away to ask the new teacher")
        cache.rows[str(row["id"])] = row
        offset += len(line) + (0 if last else 1)
    cache.valid_bytes = offset
    return cache


def _repair_tail(path: Path, valid_bytes: int) -> None:
    """Cut a truncated last line off the cache and make sure it ends with a newline before appending."""
    if not path.exists():
        return
    with open(path, "r+b") as handle:
        if handle.seek(0, os.SEEK_END) != valid_bytes:
            handle.truncate(valid_bytes)
        if valid_bytes:
            handle.seek(valid_bytes - 1)
            if handle.read(1) != b"\n":
                handle.seek(0, os.SEEK_END)
                handle.write(b"\n")


def read_cache(path: str | Path, model: str | None = None) -> dict[str, dict]:
    """Rows of a teacher cache by id (a truncated last line is ignored with a warning).

    Raises:
        ValueError: ``"<path>:<line>: ..."`` for a corrupt line before the last, or (``model`` given) a
            row written by another model.
    """
    return _scan_cache(Path(path), model).rows


def run_teacher(spec: Mapping, records: Sequence[Record], cache_path: str | Path, expert: int,
                where: str | None = None, seed: int = 0, rerun_hint: str = "rerun the same command") -> dict:
    """Ask the teacher of ``spec`` every record not yet in ``cache_path``; return counts and accuracy.

    Rows are appended and fsynced from this thread as answers arrive. Questions that fail after their
    retries are not cached; once all others are done a :class:`TeacherError` names how many failed and
    the first error.
    """
    from tqdm import tqdm

    from meml.rewards import accuracy_reward

    where = where or f"experts.sources[{expert}]"
    teacher = make_teacher(spec, where, seed)
    keep_reasoning = _setting(spec, "reasoning") == "keep"
    cache_path = Path(cache_path)
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    cache = _scan_cache(cache_path, teacher.model)
    _repair_tail(cache_path, cache.valid_bytes)
    pending = {r.id: r for r in records if r.id not in cache.rows}
    jobs = [(record_id, build_messages(spec, record)) for record_id, record in pending.items()]
    failed: list[tuple[str, TeacherError]] = []
    new = 0
    label = f"{records[0].dataset if records else ''} expert {expert} ({teacher.model})"
    with open(cache_path, "a", encoding="utf-8") as out, \
            tqdm(total=len(records), initial=len(records) - len(pending), desc=label, mininterval=2) as bar:
        for record_id, reply in teacher.generate(jobs):
            bar.update(1)
            if isinstance(reply, TeacherError):
                failed.append((record_id, reply))
                log.warning("%s: %s failed: %s", label, record_id, reply)
                continue
            record = pending[record_id]
            answer, reasoning = split_reasoning(reply.content, reply.reasoning)
            completion = trajectory_of(record.task, answer, reasoning, keep_reasoning, record.options or None)
            row = {"id": record.id, "expert": expert, "model": teacher.model, "content": reply.content,
                   "reasoning": reasoning, "completion": completion, "finish_reason": reply.finish_reason,
                   "usage": reply.usage,
                   "correct": accuracy_reward(record.task, completion, record.answer, record.options or None)}
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            out.flush()
            os.fsync(out.fileno())
            cache.rows[record.id] = row
            new += 1
    done = [cache.rows[r.id] for r in records if r.id in cache.rows]
    summary = {"cached": len(records) - len(pending), "new": new, "failed": len(failed),
               "accuracy": round(sum(float(r.get("correct") or 0.0) for r in done) / len(done), 4) if done else None}
    log.info("%s: %d cached, %d new, %d failed; accuracy %s over %d answers (%s)", label, summary["cached"],
             new, len(failed), summary["accuracy"], len(done), cache_path)
    if failed:
        first_id, first_error = failed[0]
        raise TeacherError(f"{label}: {len(failed)} of {len(pending)} question(s) failed and were not cached "
                           f"(first: {first_id}: {first_error}); {rerun_hint} to ask only those again")
    return summary
