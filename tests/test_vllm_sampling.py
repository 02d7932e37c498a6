"""Sampled evaluation runs under lm-eval's vLLM backend are samples, not copies (issue 17), checked on a CPU."""

import importlib.util
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from more_itertools import distribute

from meml.vllm_backend import _VLLM_ATTRIBUTES, EngineReplica, ReplicaPool, ReplicatedGenerate, seeded_per_request


@dataclass
class FakeSamplingParams:
    """The two fields and the method of vLLM's SamplingParams that the seeding touches."""

    temperature: float
    seed: int | None = None

    def clone(self):
        return replace(self)


def _worker_streams(params, workers):
    """What each data-parallel engine copy samples with, dealt out as lm-eval deals requests (interleaved)."""
    return [[(engine_seed, p.seed) for p in chunk] for engine_seed, chunk in
            zip([1234] * workers, (list(c) for c in distribute(workers, params)))]


def test_repeats_on_eight_gpus_get_eight_streams():
    repeats = [FakeSamplingParams(temperature=1.0)] * 8  # one document, samples: 8, as lm-eval sends it
    unseeded = _worker_streams(repeats, 8)
    assert len({tuple(s) for s in unseeded}) == 1  # the bug: every copy samples the same stream -> identical runs
    seeded = _worker_streams(seeded_per_request(repeats, base_seed=1001), 8)
    assert len({tuple(s) for s in seeded}) == 8  # every run its own stream
    assert all(p.seed is None for p in repeats)  # the caller's objects are not modified


def test_seeds_are_distinct_across_base_seeds_and_kept_when_given():
    a = [p.seed for p in seeded_per_request([FakeSamplingParams(1.0)] * 3, 1000)]
    b = [p.seed for p in seeded_per_request([FakeSamplingParams(1.0)] * 3, 1001)]
    assert a == [1000 * 1_000_003 + i for i in range(3)] and not set(a) & set(b)
    greedy, fixed = FakeSamplingParams(0.0), FakeSamplingParams(1.0, seed=7)
    assert seeded_per_request([greedy, fixed], 5) == [greedy, fixed]


def test_installed_lm_eval_deals_per_request_params_to_its_copies():
    """The subclass relies on lm-eval's VLLM._model_generate(requests, generate, sampling_params) passing each
    request's own SamplingParams to the data-parallel workers; read from the installed source (vLLM may be absent)."""
    spec = importlib.util.find_spec("lm_eval")
    source = (Path(spec.origin).parent / "models" / "vllm_causallms.py").read_text()
    assert re.search(r"def _model_generate\(\s*self,\s*requests[^,]*,\s*generate[^,]*,\s*sampling_params", source)
    assert "distribute(self.data_parallel_size, sampling_params)" in source
    for name in _VLLM_ATTRIBUTES:  # what the mixin reads off lm-eval's VLLM
        assert f"self.{name} =" in source, name


# --------------------------------------------------------------------------- one model load per replica and job


class FakeRay:
    """The part of ray the pool uses: ``remote(num_gpus=...)(cls)``, ``.remote`` on the class and its methods,
    ``get`` and ``kill``; actors run in this process."""

    def __init__(self):
        self.reserved, self.killed = [], 0

    def remote(self, num_gpus):
        fake = self

        class ActorClass:
            def __init__(self, cls):
                self.cls = cls

            def remote(self, *args):
                fake.reserved.append(num_gpus)
                return Actor(self.cls(*args))

        class Actor:
            def __init__(self, instance):
                self.instance = instance

            def __getattr__(self, name):
                method = getattr(self.instance, name)
                return type("Method", (), {"remote": staticmethod(method)})

        return ActorClass

    @staticmethod
    def get(refs):
        return list(refs)

    def kill(self, actor):
        self.killed += 1


class FakeEngine:
    """A vLLM engine that answers every prompt with its token ids reversed, tagged with the engine's number."""

    loads = 0

    def __init__(self, **model_args):
        FakeEngine.loads += 1
        self.number, self.model_args = FakeEngine.loads, model_args

    def generate(self, prompts, sampling_params, lora_request=None, use_tqdm=True):
        assert len(prompts) == len(sampling_params)
        return [(self.number, p["prompt_token_ids"][::-1], s.seed) for p, s in zip(prompts, sampling_params)]


class FakeReplica(EngineReplica):
    @staticmethod
    def load(model_args):
        return FakeEngine(**model_args)


class FakeVLLMBase:
    """lm-eval's VLLM as the mixin sees it; its own single-engine path records what it was given."""

    def __init__(self, data_parallel_size, tensor_parallel_size=1):
        self.data_parallel_size, self.tensor_parallel_size = data_parallel_size, tensor_parallel_size
        self.model_args = {"model": "m", "seed": 1234, "distributed_executor_backend": "ray"}
        self.lora_request = None
        self.single_calls = []

    def _model_generate(self, requests, generate=False, sampling_params=None):
        self.single_calls.append((requests, sampling_params))
        return ["single"] * len(requests)


def _replicated_lm(data_parallel_size, ray, tensor_parallel_size=1):
    lm = type("LM", (ReplicatedGenerate, FakeVLLMBase), {})(data_parallel_size, tensor_parallel_size)
    lm._replicas = ReplicaPool(lm.model_args, data_parallel_size, tensor_parallel_size, ray_module=ray,
                               replica_class=FakeReplica)
    return lm


def test_three_expert_prompts_on_eight_gpus_load_the_model_eight_times_not_24(monkeypatch):
    FakeEngine.loads = 0
    monkeypatch.setenv("VLLM_DP_RANK", "3")
    ray = FakeRay()
    lm = _replicated_lm(8, ray, tensor_parallel_size=2)
    requests = [[index, 100 + index] for index in range(19)]  # not a multiple of 8
    for _ in range(3):  # one evaluation job: one generate call per inference expert prompt
        out = lm._model_generate(requests, generate=True, sampling_params=FakeSamplingParams(temperature=1.0))
        assert [tokens for _, tokens, _ in out] == [r[::-1] for r in requests]  # back in request order
        assert [engine for engine, _, _ in out] == [1 + index % 8 for index in range(19)]  # dealt interleaved
        assert len({seed for _, _, seed in out}) == 19  # every sampled request its own seed
    assert FakeEngine.loads == 8 and ray.reserved == [2] * 8  # one load a replica, tensor-parallel GPUs each
    assert "VLLM_DP_RANK" not in os.environ
    engine = lm._replicas._actors[0].instance.engine
    assert "distributed_executor_backend" not in engine.model_args and engine.model_args["model"] == "m"
    lm.close()
    assert ray.killed == 8 and lm._replicas is None


def test_one_replica_keeps_lm_evals_own_engine():
    lm = _replicated_lm(1, FakeRay())
    greedy = FakeSamplingParams(temperature=0.0)
    assert lm._model_generate([[1], [2]], generate=True, sampling_params=greedy) == ["single", "single"]
    assert lm.single_calls == [([[1], [2]], [greedy, greedy])]


def test_installed_lm_eval_still_reloads_per_call():
    """Why the pool exists: the installed lm-eval builds a new LLM inside its per-call ray task (if it stops doing
    so, the pool can go)."""
    spec = importlib.util.find_spec("lm_eval")
    source = (Path(spec.origin).parent / "models" / "vllm_causallms.py").read_text()
    replica = source[source.index("def dp_replica("):source.index("ray.get(object_refs)")]
    assert "llm = LLM(**model_args)" in replica and "ray.shutdown()" in source
