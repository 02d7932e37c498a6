"""lm-eval's vLLM backend as evaluation and sampling use it on GPUs: distinct samples, one model load a replica.

lm-eval (0.4.13) runs data parallelism by starting a fresh ray task per ``generate`` call that builds a new
``vllm.LLM``: an evaluation job loads the model once per GPU copy per expert prompt (24 loads at 8 GPUs x 3
prompts), and every copy samples with the same seed. :func:`vllm_lm_class` returns lm-eval's ``VLLM`` with two
changes, both in ``_model_generate``:

* every sampled request gets its own seed (:func:`seeded_per_request`), so sampled runs differ on any number
  of GPUs;
* with ``data_parallel_size > 1`` the requests go to a :class:`ReplicaPool` of long-lived ray actors, each
  holding one engine loaded once and kept for the job (:meth:`close` frees them).

Everything else (tokenization, chat templates, stop sequences, result order) is lm-eval's own.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Sequence

# Variables vLLM's engine-argument parsing can leave in the driver's environment; ray copies them into its
# actors, where they make a single-replica engine compute a data-parallel rank (lm-eval removes them as well).
DATA_PARALLEL_ENV = ("VLLM_DP_RANK", "VLLM_DP_RANK_LOCAL", "VLLM_DP_SIZE", "VLLM_DP_MASTER_IP",
                     "VLLM_DP_MASTER_PORT")


def seeded_per_request(sampling_params: Sequence, base_seed: int) -> list:
    """Each sampled request its own seed, ``base_seed * 1_000_003 + index``, unless it already has one.

    lm-eval's vLLM backend sends a document's ``repeats`` as identical requests and, with data parallelism, deals
    them out one per engine copy, each copy seeded alike: without a seed per request the "sampled runs" of the
    complementarity analysis would be copies of one another. Greedy requests (temperature 0) are left as they are.
    """
    out = []
    for index, params in enumerate(sampling_params):
        if getattr(params, "temperature", 0) and getattr(params, "seed", None) is None:
            params = params.clone()
            params.seed = base_seed * 1_000_003 + index
        out.append(params)
    return out


class EngineReplica:
    """One vLLM engine inside a ray actor, on the GPUs ray gave the actor; the model is loaded once."""

    def __init__(self, model_args: dict):
        for key in DATA_PARALLEL_ENV:
            os.environ.pop(key, None)
        # a nested ray executor inside an actor deadlocks on placement groups: let vLLM pick (uni or mp)
        self.engine = self.load({k: v for k, v in model_args.items() if k != "distributed_executor_backend"})

    @staticmethod
    def load(model_args: dict):
        from vllm import LLM

        return LLM(**model_args)

    def generate(self, requests: list[list[int]], sampling_params: list, lora_request=None) -> list:
        prompts = [{"prompt_token_ids": request} for request in requests]  # vLLM's TokensPrompt
        return self.engine.generate(prompts, sampling_params=sampling_params, lora_request=lora_request,
                                    use_tqdm=False)


class ReplicaPool:
    """``size`` data-parallel replicas of ``gpus_per_replica`` GPUs each, started on the first call and reused.

    Requests are dealt out interleaved (as lm-eval does, which balances prompt lengths) and the outputs put
    back in request order.

    Args:
        model_args: ``vllm.LLM`` keyword arguments (lm-eval's ``VLLM.model_args``).
        size: number of replicas (lm-eval's ``data_parallel_size``).
        gpus_per_replica: GPUs ray reserves for each replica (vLLM's tensor parallel size).
        ray_module: the ``ray`` module (tests pass a stand-in); default: ``import ray``.
        replica_class: the actor class (tests pass one with a stand-in engine).
    """

    def __init__(self, model_args: dict, size: int, gpus_per_replica: int, ray_module=None,
                 replica_class: type = EngineReplica):
        if size < 1 or gpus_per_replica < 1:
            raise ValueError(f"ReplicaPool needs size and gpus_per_replica >= 1, got {size} and {gpus_per_replica}")
        self.model_args, self.size, self.gpus_per_replica = dict(model_args), size, gpus_per_replica
        self.replica_class = replica_class
        self._ray = ray_module
        self._actors: list | None = None

    @property
    def ray(self):
        if self._ray is None:
            self._ray = importlib.import_module("ray")
        return self._ray

    def _start(self) -> list:
        actor_class = self.ray.remote(num_gpus=self.gpus_per_replica)(self.replica_class)
        return [actor_class.remote(self.model_args) for _ in range(self.size)]

    def generate(self, requests: Sequence[list[int]], sampling_params: Sequence, lora_request=None) -> list:
        """vLLM's outputs of ``requests`` (token ids), one ``SamplingParams`` per request, in request order."""
        from more_itertools import distribute

        if len(requests) != len(sampling_params):
            raise ValueError(f"{len(requests)} requests but {len(sampling_params)} sampling parameters")
        if self._actors is None:
            self._actors = self._start()
        shares = zip(distribute(self.size, requests), distribute(self.size, sampling_params), strict=True)
        refs = [actor.generate.remote(list(reqs), list(params), lora_request)
                for actor, (reqs, params) in zip(self._actors, shares, strict=True)]
        outputs = self.ray.get(refs)
        return [outputs[index % self.size][index // self.size] for index in range(len(requests))]

    def close(self) -> None:
        """Stop the replicas and free their GPUs (a later call starts them again)."""
        for actor in self._actors or []:
            self.ray.kill(actor)
        self._actors = None


class ReplicatedGenerate:
    """Mixin over lm-eval's ``VLLM``: per-request seeds, and data parallelism through a :class:`ReplicaPool`.

    Relies on the base's ``_model_generate(requests, generate, sampling_params)``, ``data_parallel_size``,
    ``tensor_parallel_size``, ``model_args`` and ``lora_request`` (checked by :func:`vllm_lm_class`)."""

    sampling_seed = 0
    _replicas: ReplicaPool | None = None

    def _model_generate(self, requests, generate=False, sampling_params=None):
        if generate and sampling_params is not None:
            if not isinstance(sampling_params, list):
                sampling_params = [sampling_params] * len(requests)
            sampling_params = seeded_per_request(sampling_params, self.sampling_seed)
        if self.data_parallel_size <= 1:
            return super()._model_generate(requests, generate, sampling_params)
        if not generate or sampling_params is None:  # lm-eval's log-likelihood request
            from vllm import SamplingParams

            sampling_params = SamplingParams(temperature=0, prompt_logprobs=1, max_tokens=1, detokenize=False)
        if not isinstance(sampling_params, list):
            sampling_params = [sampling_params] * len(requests)
        if self._replicas is None:
            self._replicas = ReplicaPool(self.model_args, self.data_parallel_size, self.tensor_parallel_size)
        return self._replicas.generate(requests, sampling_params, self.lora_request)

    def close(self) -> None:
        """Free the data-parallel replicas (nothing to do with one replica: the engine lives in this process)."""
        if self._replicas is not None:
            self._replicas.close()
            self._replicas = None


_VLLM_GENERATE_PARAMS = ("self", "requests", "generate", "sampling_params")
_VLLM_ATTRIBUTES = ("data_parallel_size", "tensor_parallel_size", "model_args", "lora_request")


@functools.lru_cache(maxsize=1)
def vllm_lm_class():
    """lm-eval's ``VLLM`` with :class:`ReplicatedGenerate`; raises when the installed lm-eval changed shape."""
    import inspect

    from lm_eval.models.vllm_causallms import VLLM

    found = tuple(inspect.signature(VLLM._model_generate).parameters)
    init_source = inspect.getsource(VLLM.__init__)
    missing = [name for name in _VLLM_ATTRIBUTES if f"self.{name} =" not in init_source]
    if found[:len(_VLLM_GENERATE_PARAMS)] != _VLLM_GENERATE_PARAMS or missing:
        raise RuntimeError(f"lm_eval's VLLM._model_generate takes {found} (expected {_VLLM_GENERATE_PARAMS}) and "
                           f"VLLM.__init__ sets no {missing}: this lm-eval version is not supported "
                           "(meml/vllm_backend.py)")
    return type("ReplicatedVLLM", (ReplicatedGenerate, VLLM), {})
