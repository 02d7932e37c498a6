"""Shared fixtures: offline environment, a small synthetic world, a tiny model built in seconds."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]


def load_bench(name: str):
    """A script of bench/ (not a package) imported as a module, for the tests of its CPU-testable parts."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def small_world(tmp_path_factory):
    """Synthetic GSM8K/MathQA/StrategyQA files with small splits."""
    from meml.world.generate import WorldConfig, write_world

    out = tmp_path_factory.mktemp("world")
    write_world(out, WorldConfig(seed=0, splits={"pretrain": 60, "train": 60, "test": 30}))
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, small_world):
    """A randomly initialised tiny Qwen2 (hidden 64, 2 layers) with a tokenizer trained on the world."""
    from meml.data import load_records
    from meml.tiny import build_model, save_pretrained_folder, train_tokenizer

    corpus = []
    for dataset in ("synth_gsm8k", "synth_mathqa", "synth_strategyqa"):
        records = load_records(dataset, "train", small_world)
        corpus += [r.question for r in records] + [r.rationale for r in records]
    tokenizer = train_tokenizer(corpus + ["You are Expert 0. Solve step by step."] * 50, "qwen2", vocab_size=400)
    model = build_model("qwen2", tokenizer, hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2,
                        intermediate_size=128, max_position_embeddings=256, seed=0)
    out = tmp_path_factory.mktemp("models") / "tiny-qwen2"
    save_pretrained_folder(model, tokenizer, out)
    return out
