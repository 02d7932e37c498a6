"""Teacher-LLM expert sources (meml/experts/teachers.py) against a fake OpenAI-compatible server on 127.0.0.1."""

import copy
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from meml import paths
from meml.data import read_jsonl
from meml.experts.teachers import (
    TeacherError,
    ensure_answer_line,
    make_teacher,
    read_cache,
    run_teacher,
    split_reasoning,
    teacher_resources,
)
from meml.fields import ConfigError
from meml.pipeline import stages
from meml.pipeline.settings import load_settings, settings_from_config, with_changes
from meml.records import Record
from meml.training.compute import ComputeConfig
from tests.conftest import REPO_ROOT

KEY_ENV = "MEML_TEST_TEACHER_KEY"


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """Never send a 127.0.0.1 request through a proxy; a known API key."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv(KEY_ENV, "sk-test-123")


class FakeTeacher:
    """A scripted ``/chat/completions`` server.

    ``replies`` maps a question to its default reply: a string (the content) or a message dict
    (``content``, ``reasoning_content``). ``script`` maps a question to actions consumed one per request
    before the default reply: ``{"status": 429, "headers": {...}}``, ``{"sleep": s}`` (then the reply),
    ``"malformed"``. Every request is logged as ``(question, time, headers)`` (header names in lower case).
    """

    def __init__(self, replies: dict, script: dict | None = None, delay: float = 0.0):
        self.replies, self.script, self.delay = replies, {q: list(a) for q, a in (script or {}).items()}, delay
        self.requests, self.in_flight, self.max_in_flight = [], 0, 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def asked(self, question: str) -> list[float]:
        with self.lock:
            return [t for q, t, _ in self.requests if q == question]

    def question_of(self, text: str) -> str:
        found = [q for q in self.replies if q in text]
        assert found, f"unknown question in {text!r}"
        return max(found, key=len)

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body: bytes, headers=None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):  # noqa: N802
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                assert self.path == "/v1/chat/completions"
                question = fake.question_of(request["messages"][-1]["content"])
                with fake.lock:
                    fake.requests.append((question, time.monotonic(), {k.lower(): v for k, v in self.headers.items()}))
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                    actions = fake.script.get(question)
                    action = actions.pop(0) if actions else None
                try:
                    time.sleep(fake.delay)
                    if isinstance(action, dict) and "sleep" in action:
                        time.sleep(action["sleep"])
                    if action == "malformed":
                        return self._send(200, b'{"choices": [{"mess')
                    if isinstance(action, dict) and "status" in action:
                        error = b'{"error": {"message": "scripted"}}'
                        return self._send(action["status"], error, action.get("headers"))
                    reply = fake.replies[question]
                    message = {"role": "assistant", "content": reply} if isinstance(reply, str) else reply
                    body = {"id": "x", "object": "chat.completion", "model": request["model"],
                            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}
                    self._send(200, json.dumps(body).encode())
                except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                    pass
                finally:
                    with fake.lock:
                        fake.in_flight -= 1

        return Handler

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def _record(i, task, question, answer, options=""):
    return Record(id=f"q{i}", task=task, dataset=task, split="train", question=question, answer=answer,
                  rationale=f"#### {answer}", options=options)


def _spec(url, **extra):
    return {"kind": "openai", "base_url": url, "model": "fake-r1", "api_key_env": KEY_ENV, "max_concurrency": 4,
            "max_retries": 3, "timeout_s": 5, **extra}


OPTIONS = "a ) 1 , b ) 2 , c ) 3 , d ) 4 , e ) 5"


# --------------------------------------------------------------------------- pure functions


def test_split_reasoning_forms():
    assert split_reasoning("<think>a</think>\nAnswer 4") == ("Answer 4", "a")
    assert split_reasoning("plan</think>Answer 4", "field") == ("Answer 4", "field\n\nplan")
    assert split_reasoning("Answer 4", "  ") == ("Answer 4", "")
    assert split_reasoning("<think>cut off while thinking") == ("", "cut off while thinking")


def test_answer_line_is_appended_only_when_needed():
    assert ensure_answer_line("gsm8k", "So \\boxed{1,080}.") == "So \\boxed{1,080}.\n#### 1080"
    assert ensure_answer_line("gsm8k", "2+2=4\n#### 4\n") == "2+2=4\n#### 4"
    assert ensure_answer_line("mathqa", "The answer is (c).", OPTIONS) == "The answer is (c).\n#### c"
    assert ensure_answer_line("strategyqa", "So the answer is: No.") == "So the answer is: No.\n#### no"
    assert ensure_answer_line("gsm8k", "I cannot solve this.") == "I cannot solve this."


# --------------------------------------------------------------------------- the client


def test_answers_are_normalised_and_cached(tmp_path):
    records = [
        _record(0, "gsm8k", "What is 40 plus 2?", "42"),
        _record(1, "gsm8k", "What is 3 plus 4?", "7"),
        _record(2, "mathqa", f"What is 1 plus 2?\nOptions: {OPTIONS}", "c", OPTIONS),
        _record(3, "strategyqa", "Is the sky green?", "no"),
        _record(4, "gsm8k", "What is 2 plus 2?", "4"),
        _record(5, "gsm8k", "What is 5 plus 0?", "5"),
        _record(6, "gsm8k", "What is unknowable?", "1"),
    ]
    replies = {
        "What is 40 plus 2?": "40 + 2 = 42. The answer is \\boxed{42}.",
        "What is 3 plus 4?": "3 + 4 = 7\n#### 7",
        "What is 1 plus 2?": "1 + 2 = 3, so the answer is (c).",
        "Is the sky green?": "<think>The sky is blue.</think>\nThe sky is blue, not green. So the answer is yes.",
        "What is 2 plus 2?": {"role": "assistant", "content": "2 + 2 = 4", "reasoning_content": "Let me add."},
        "What is 5 plus 0?": "Adding zero...</think>Answer: 5",
        "What is unknowable?": "I cannot say.",
    }
    cache = tmp_path / "teacher.jsonl"
    with FakeTeacher(replies) as fake:
        summary = run_teacher(_spec(fake.url), records, cache, expert=1)
        user = fake.requests[0][2]
    assert summary == {"cached": 0, "new": 7, "failed": 0, "accuracy": round(5 / 7, 4)}
    rows = read_jsonl(cache)
    assert sorted(r["id"] for r in rows) == [r.id for r in records]
    by_id = {r["id"]: r for r in rows}
    assert set(by_id["q0"]) == {"id", "expert", "model", "content", "reasoning", "completion", "finish_reason",
                                "usage", "correct"}
    assert by_id["q0"]["completion"].endswith("\\boxed{42}.\n#### 42") and by_id["q0"]["correct"] == 1.0
    assert by_id["q1"]["completion"] == "3 + 4 = 7\n#### 7"
    assert by_id["q2"]["completion"].endswith("\n#### c") and by_id["q2"]["correct"] == 1.0
    assert by_id["q3"]["completion"] == "The sky is blue, not green. So the answer is yes.\n#### yes"
    assert by_id["q3"]["reasoning"] == "The sky is blue." and by_id["q3"]["correct"] == 0.0
    assert "<think>" in by_id["q3"]["content"]
    assert by_id["q4"]["completion"] == "2 + 2 = 4\n#### 4" and by_id["q4"]["reasoning"] == "Let me add."
    assert by_id["q5"]["completion"] == "Answer: 5\n#### 5" and by_id["q5"]["reasoning"] == "Adding zero..."
    assert by_id["q6"]["completion"] == "I cannot say." and by_id["q6"]["correct"] == 0.0
    assert by_id["q0"]["model"] == "fake-r1" and by_id["q0"]["expert"] == 1
    assert by_id["q0"]["usage"]["total_tokens"] == 15
    assert user["authorization"] == "Bearer sk-test-123"


def test_default_prompt_and_request_fields(tmp_path):
    seen = []
    records = [_record(0, "mathqa", f"What is 1 plus 2?\nOptions: {OPTIONS}", "c", OPTIONS)]

    class Spy(FakeTeacher):
        def question_of(self, text):
            seen.append(text)
            return super().question_of(text)

    with Spy({"What is 1 plus 2?": "(c)"}) as fake:
        run_teacher(_spec(fake.url, api_key_env=None, top_p=0.95, extra_body={"top_k": 20},
                          system_prompt="Be careful."), records, tmp_path / "c.jsonl", expert=2)
        headers = fake.requests[0][2]
    assert "authorization" not in headers
    assert "#### <letter>" in seen[0] and "(a, b, c, d or e)" in seen[0] and seen[0].endswith(records[0].question)


def test_reasoning_keep_prepends_it(tmp_path):
    records = [_record(0, "gsm8k", "What is 2 plus 2?", "4")]
    with FakeTeacher({"What is 2 plus 2?": {"content": "<think>Two and two.</think>It is 4.",
                                            "reasoning": "Hmm."}}) as fake:
        run_teacher(_spec(fake.url, reasoning="keep"), records, tmp_path / "c.jsonl", expert=1)
    row = read_jsonl(tmp_path / "c.jsonl")[0]
    assert row["completion"] == "Hmm.\n\nTwo and two.\n\nIt is 4.\n#### 4"
    assert row["reasoning"] == "Hmm.\n\nTwo and two."


def test_transient_failures_are_retried_and_client_errors_reported(tmp_path):
    questions = ["Q429?", "Q500?", "Qslow?", "Qbad?", "Q400?", "Qok?"]
    records = [_record(i, "gsm8k", q, "3") for i, q in enumerate(questions)]
    script = {"Q429?": [{"status": 429, "headers": {"Retry-After": "1.2"}}], "Q500?": [{"status": 500}],
              "Qslow?": [{"sleep": 1.5}], "Qbad?": ["malformed"], "Q400?": [{"status": 400}] * 5}
    cache = tmp_path / "c.jsonl"
    with FakeTeacher({q: "1 + 2 = 3\n#### 3" for q in questions}, script) as fake:
        with pytest.raises(TeacherError, match=r"1 of 6 question\(s\) failed .*q4: HTTP 400") as err:
            run_teacher(_spec(fake.url, timeout_s=0.5), records, cache, expert=1, rerun_hint="rerun it")
        assert "rerun it" in str(err.value)
        first, second = fake.asked("Q429?")
        assert second - first >= 1.2  # Retry-After honoured (the backoff alone starts at 0.5 s x jitter 0.75-1)
        for question, count in (("Q500?", 2), ("Qslow?", 2), ("Qbad?", 2), ("Q400?", 1), ("Qok?", 1)):
            assert len(fake.asked(question)) == count, question
        assert sorted(read_cache(cache)) == ["q0", "q1", "q2", "q3", "q5"]
        fake.script["Q400?"] = []
        summary = run_teacher(_spec(fake.url), records, cache, expert=1)  # asks only the failed one
        assert summary == {"cached": 5, "new": 1, "failed": 0, "accuracy": 1.0}
        assert len(fake.asked("Q400?")) == 2 and len(fake.asked("Qok?")) == 1
    assert sorted(r["id"] for r in read_jsonl(cache)) == [f"q{i}" for i in range(6)]


def test_retries_give_up_after_max_retries(tmp_path):
    records = [_record(0, "gsm8k", "Q503?", "3")]
    with FakeTeacher({"Q503?": "#### 3"}, {"Q503?": [{"status": 503}] * 10}) as fake:
        with pytest.raises(TeacherError, match=r"HTTP 503 .*gave up after 3 attempt\(s\)"):
            run_teacher(_spec(fake.url, max_retries=2), records, tmp_path / "c.jsonl", expert=1)
        assert len(fake.asked("Q503?")) == 3
    assert read_cache(tmp_path / "c.jsonl") == {}


def test_concurrency_limit_is_honoured(tmp_path):
    questions = [f"Question number {i}?" for i in range(10)]
    records = [_record(i, "gsm8k", q, "1") for i, q in enumerate(questions)]
    with FakeTeacher({q: "#### 1" for q in questions}, delay=0.15) as fake:
        run_teacher(_spec(fake.url, max_concurrency=3), records, tmp_path / "c.jsonl", expert=1)
        assert 2 <= fake.max_in_flight <= 3


def test_missing_api_key_names_key_and_variable(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    message = rf"experts.sources\[2\].api_key_env: environment variable {KEY_ENV} is not set"
    with pytest.raises(ValueError, match=message):
        run_teacher(_spec("http://127.0.0.1:9/v1"), [], tmp_path / "c.jsonl", expert=2)


def test_cache_reading_tolerates_only_a_truncated_last_line(tmp_path, caplog):
    records = [_record(i, "gsm8k", f"Question {i}?", "1") for i in range(3)]
    good = [{"id": f"q{i}", "model": "fake-r1", "completion": "#### 1", "correct": 1.0} for i in range(2)]
    cache = tmp_path / "c.jsonl"
    cache.write_text(json.dumps(good[0]) + "\n{oops\n" + json.dumps(good[1]) + "\n")
    with pytest.raises(ValueError, match=rf"{cache}:2: corrupt teacher cache line"):
        read_cache(cache)
    cache.write_text(json.dumps(good[0]) + "\n" + json.dumps(good[1])[:25])
    with caplog.at_level(logging.WARNING, logger="meml.experts.teachers"):
        assert list(read_cache(cache)) == ["q0"]
    assert "truncated last line" in caplog.text
    with pytest.raises(ValueError, match="source's model is 'other'"):
        read_cache(cache, model="other")
    with FakeTeacher({f"Question {i}?": "#### 1" for i in range(3)}) as fake:
        assert run_teacher(_spec(fake.url), records, cache, expert=1)["new"] == 2
        assert [q for q, _, _ in fake.requests].count("Question 0?") == 0
    rows = read_jsonl(cache)  # strict reader: the cut line is gone, every row on its own line
    assert sorted(r["id"] for r in rows) == ["q0", "q1", "q2"]


# --------------------------------------------------------------------------- config and stages


@pytest.fixture(scope="module")
def world_results(tmp_path_factory):
    """A results folder holding a small synthetic GSM8K world (copied into each test's results_dir)."""
    root = tmp_path_factory.mktemp("teacher-world")
    config = _config(root, "http://127.0.0.1:9/v1")
    stages.make_world(config)
    return root


def _config(root, url, **source):
    settings = load_settings()
    sources = settings.to_mapping()["experts"]["sources"]
    sources[1] = _spec(url, **source)
    return with_changes(settings, results_dir=str(root), datasets=["synth_gsm8k"],
                        world={"splits": {"pretrain": 3, "train": 12, "rl": 3, "test": 3, "dev": 3}},
                        experts={"sources": sources, "filter_incorrect": True})


def _results(tmp_path, world_results):
    shutil.copytree(world_results / "data", tmp_path / "data")
    return tmp_path


def _answers(config, wrong=()):
    """Reply per training question: the gold answer, or gold + 1 for the ids in ``wrong``."""
    return {r.question: f"Adding up.\n#### {int(r.answer) + (1 if r.id in wrong else 0)}"
            for r in stages.train_records(config, "synth_gsm8k")}


def test_config_accepts_teacher_kinds_and_names_their_keys():
    sources = [{"kind": "gold"}, _spec("https://api.deepseek.com/v1"),
               {"kind": "local", "model": "some/model", "backend": "vllm", "batch_size": 4}]
    config = {"datasets": ["gsm8k"], "experts": {"sources": sources}}
    assert settings_from_config(copy.deepcopy(config)).experts.sources == sources  # kept as given
    for index, change, message in (
            (1, {"base_url": None}, "experts.sources[1]: an openai source needs 'base_url' and 'model'"),
            (2, {"model": None}, "experts.sources[2]: a local source needs 'model'"),
            (2, {"timeout_s": 3}, "experts.sources[2]: ['timeout_s'] do not apply to a local source"),
            (1, {"backend": "vllm"}, "experts.sources[1]: ['backend'] do not apply to an openai source"),
            (1, {"prompt_template": "no placeholder"},
             "experts.sources[1]: prompt_template must contain '{question}'"),
            (1, {"max_concurrency": 0}, "experts.sources.1.max_concurrency: 0 is less than the minimum of 1"),
            (2, {"dtype": "int4"}, "experts.sources.2.dtype: 'int4' is not one of"),
            (0, {"colour": "red"}, "experts.sources.0: Additional properties are not allowed ('colour'"),
            (1, {"retry_base_s": 1.0}, "experts.sources[1]: retry_base_s is no longer read: the openai client's own "
                                       "backoff"),
            (1, {"gpus": 2}, "experts.sources[1]: ['gpus'] do not apply to an openai source"),
            (2, {"gpus": 0}, "experts.sources.2.gpus: 0 is less than the minimum of 1")):
        bad = copy.deepcopy(config)
        spec = bad["experts"]["sources"][index]
        spec.update(change)
        for key in [k for k, v in change.items() if v is None]:
            spec.pop(key)
        with pytest.raises(ConfigError) as err:
            settings_from_config(bad, "my.yaml")
        assert str(err.value).startswith("my.yaml: ") and message in str(err.value)


def test_teacher_jobs_declare_the_gpus_they_use():
    cuda, cpu = ComputeConfig(device="cuda", mem_mb_per_job=64000), ComputeConfig()
    local = {"kind": "local", "model": "m"}
    assert teacher_resources(local, cuda) == {"gpu": 1, "mem_mb": 64000, "cpus_per_task": 16}  # one engine, one GPU
    assert teacher_resources({**local, "gpus": 4}, cuda)["gpu"] == 4  # vLLM tensor parallel over 4
    assert teacher_resources({**local, "gpus": 4}, cpu)["gpu"] == 0
    api = {"gpu": 0, "mem_mb": 4000, "cpus_per_task": 2}  # an API teacher waits on the network
    assert teacher_resources(_spec("https://api.deepseek.com/v1"), cuda) == api


def test_openai_teacher_needs_the_openai_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(ImportError, match=r"experts.sources\[1\]: kind openai needs the openai package: "
                                          r"pip install 'meml-grpo\[teachers\]'"):
        make_teacher(_spec("http://127.0.0.1:9/v1"), "experts.sources[1]")


def test_experts_stage_filters_teacher_answers(tmp_path, world_results):
    root = _results(tmp_path, world_results)
    config = _config(root, "http://127.0.0.1:9/v1")
    wrong = {r.id for r in stages.train_records(config, "synth_gsm8k")[::3]}
    with FakeTeacher(_answers(config, wrong)) as fake:
        config = _config(root, fake.url)
        with pytest.raises(FileNotFoundError, match=r"teachers/synth_gsm8k/expert1.jsonl: no teacher cache .*"
                                                     r"meml teacher --dataset synth_gsm8k --expert 1"):
            stages.make_experts(config, "synth_gsm8k")
        stages.teacher_trajectories(config, "synth_gsm8k", 1)
    stages.make_experts(config, "synth_gsm8k")
    rows = read_jsonl(paths.experts_file(root, "synth_gsm8k", 1))
    assert len(rows) == 12 and rows[0]["source"] == "teacher:fake-r1"
    for row in rows:
        if row["id"] in wrong:
            assert row["correct"] == 0.0 and row["completion"] is None
        else:
            assert row["correct"] == 1.0 and row["completion"].startswith("Adding up.\n#### ")
    cache = paths.teacher_file(root, "synth_gsm8k", 1)
    lines = cache.read_text().splitlines()
    cache.write_text("\n".join(lines[:5]) + "\n")
    with pytest.raises(ValueError, match=r"no teacher answer for 7 of 12 .*--expert 1` \(it asks only the missing"):
        stages.make_experts(config, "synth_gsm8k")
    cache.write_text("\n".join(lines[:2] + ["not json"] + lines[3:]) + "\n")
    with pytest.raises(ValueError, match=rf"{cache}:3: corrupt teacher cache line"):
        stages.make_experts(config, "synth_gsm8k")
    with pytest.raises(ValueError, match=r"experts.sources\[0\] is not a teacher LLM source"):
        stages.teacher_trajectories(config, "synth_gsm8k", 0)


@pytest.mark.slow
def test_killed_teacher_run_resumes_without_repeating_questions(tmp_path, world_results):
    root = _results(tmp_path, world_results)
    config = _config(root, "http://127.0.0.1:9/v1")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    with FakeTeacher(_answers(config), delay=0.25) as fake:
        config = _config(root, fake.url, max_concurrency=2)
        config_file = tmp_path / "config.yaml"
        config_file.write_text(yaml.safe_dump(config.to_mapping(), sort_keys=False))
        command = [sys.executable, "-m", "meml", "teacher", "--config", str(config_file), "--dataset", "synth_gsm8k",
                   "--expert", "1"]
        cache = paths.teacher_file(root, "synth_gsm8k", 1)
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if cache.exists() and len(cache.read_text().splitlines()) >= 4:
                break
            time.sleep(0.05)
        assert process.poll() is None, process.stderr.read()
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stderr.close()
        done = set(read_cache(cache))
        assert 4 <= len(done) < 12
        with fake.lock:
            asked_before = len(fake.requests)
        finished = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert finished.returncode == 0, finished.stderr
        assert f"{len(done)} cached, {12 - len(done)} new, 0 failed" in finished.stderr
        questions = {r.id: r.question for r in stages.train_records(config, "synth_gsm8k")}
        asked_after = {q for q, _, _ in fake.requests[asked_before:]}
    assert not asked_after & {questions[i] for i in done}
    ids = [row["id"] for row in read_jsonl(cache)]
    assert sorted(ids) == sorted(questions) and len(ids) == len(set(ids))


def test_cli_has_the_teacher_stage():
    from meml.pipeline.cli import build_parser

    args = build_parser().parse_args(["teacher", "--dataset", "gsm8k", "--expert", "1"])
    assert (args.command, args.dataset, args.expert) == ("teacher", "gsm8k", 1)


# --------------------------------------------------------------------------- local models


@pytest.mark.slow
def test_local_transformers_teacher_caches_and_resumes(tmp_path, small_world, tiny_model_dir):
    from meml.data import load_records

    records = load_records("synth_gsm8k", "train", small_world)[:5]
    spec = {"kind": "local", "model": str(tiny_model_dir), "backend": "transformers", "batch_size": 2,
            "max_tokens": 6, "temperature": 0, "prompt_template": "{question}"}
    cache = tmp_path / "local.jsonl"
    assert run_teacher(spec, records, cache, expert=1)["new"] == 5
    rows = read_jsonl(cache)
    assert [r["id"] for r in rows] == [r.id for r in records]
    assert all(r["model"] == str(tiny_model_dir) and r["usage"]["completion_tokens"] <= 6 for r in rows)
    summary = run_teacher(spec, records, cache, expert=1)
    assert (summary["cached"], summary["new"]) == (5, 0)
    cache.write_text("".join(json.dumps(r) + "\n" for r in rows[:3]))
    summary = run_teacher(spec, records, cache, expert=1)
    assert (summary["cached"], summary["new"]) == (3, 2)
    assert [r["id"] for r in read_jsonl(cache)] == [r.id for r in records]


def test_vllm_backend_needs_the_gpu_extra(tmp_path):
    try:
        import vllm  # noqa: F401
        pytest.skip("vllm is installed")
    except ImportError:
        pass
    with pytest.raises(ValueError, match=r"experts.sources\[1\].backend: vllm is not installed; install the gpu extra"):
        run_teacher({"kind": "local", "model": "x", "backend": "vllm"}, [], tmp_path / "c.jsonl", expert=1)


@pytest.mark.slow
def test_workflow_teacher_rule_keeps_the_cache_of_a_failed_job(tmp_path, world_results):
    """Snakemake runs `meml teacher` before the experts stage; a failed job's answers survive for the rerun."""
    root = _results(tmp_path, world_results)
    config = _config(root, "http://127.0.0.1:9/v1")
    first = stages.train_records(config, "synth_gsm8k")[0]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    experts = paths.experts_file(root, "synth_gsm8k", 1)
    with FakeTeacher(_answers(config), script={first.question: [{"status": 400}]}) as fake:
        config_file = tmp_path / "config.yaml"
        config_file.write_text(yaml.safe_dump(_config(root, fake.url).to_mapping(), sort_keys=False))
        command = [sys.executable, "-m", "snakemake", str(experts), "--cores", "1", "--configfile", str(config_file)]
        failed = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert failed.returncode != 0 and not experts.exists(), failed.stderr
        log = (root / "logs" / "teacher" / "synth_gsm8k" / "expert1.log").read_text()
        assert "1 of 12 question(s) failed" in log
        assert len(read_cache(paths.teacher_file(root, "synth_gsm8k", 1))) == 11  # kept despite the failed job
        with fake.lock:
            asked_before = len(fake.requests)
        done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        with fake.lock:
            asked_again = [q for q, _, _ in fake.requests[asked_before:]]
    assert asked_again == [first.question]
    summary = json.loads(paths.teacher_summary_file(root, "synth_gsm8k", 1).read_text())
    assert summary["cached"] == 11 and summary["new"] == 1 and summary["failed"] == 0 and summary["accuracy"] == 1.0
    assert [row["correct"] for row in read_jsonl(experts)] == [1.0] * 12
