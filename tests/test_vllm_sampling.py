"""Sampled evaluation runs under lm-eval's vLLM backend are samples, not copies (issue 17), checked on a CPU."""

import importlib.util
import re
from dataclasses import dataclass, replace
from pathlib import Path

from more_itertools import distribute

from meml.evaluation import seeded_per_request


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
