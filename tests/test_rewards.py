"""Tests of meml.rewards: hand-written tricky cases plus every row of the real data files."""

from __future__ import annotations

import json
import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from meml.rewards import (
    STOP_SEQUENCES,
    accuracy_reward,
    extract_answer,
    make_reward_function,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

OPTIONS = "a ) 10 , b ) 20 , c ) 30 , d ) 40 , e ) none of these"


def _rows(relative: str) -> list[dict]:
    path = DATA / relative
    if not path.is_file():
        pytest.skip(f"real data file {relative} not available under {DATA}")
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


# --------------------------------------------------------------------------------------------- tasks


def test_unknown_task_raises():
    with pytest.raises(ValueError):
        extract_answer("mmlu", "#### 3")
    with pytest.raises(ValueError):
        accuracy_reward("synth_mmlu", "#### 3", "3")
    with pytest.raises(ValueError):
        make_reward_function("math")


@pytest.mark.parametrize("task", ["synth_gsm8k", "synth_mathqa", "synth_strategyqa"])
def test_synthetic_variants_use_their_family(task):
    text, reference = {
        "synth_gsm8k": ("so 3 + 4 = 7\n#### 7", "7"),
        "synth_mathqa": ("... answer : c", "c"),
        "synth_strategyqa": ("... #### no", "no"),
    }[task]
    assert accuracy_reward(task, text, reference) == 1.0


# --------------------------------------------------------------------------------------------- GSM8K


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("She has 3 + 4 = 7 apples.\n#### 1,080", "1080"),
        ("#### 5\nwait, that is wrong: 2 + 5 = 7\n#### 7", "7"),  # the LAST #### wins
        ("Total: 12 apples, 30 pears, 4 boxes.\n#### 12", "12"),  # #### beats the last number
        ("#### $18.00", "18"),
        ("#### 18.50", "18.5"),
        ("#### -3", "-3"),
        ("#### −3", "-3"),  # unicode minus
        ("#### 7.", "7"),
        ("#### 0.0", "0"),
        ("#### -0", "0"),
        ("#### 1,000,000", "1000000"),
        ("#### $1,080.50 in total", "1080.5"),
        ("#### 18 dollars", "18"),
        ("#### The final answer is 25.", "25"),
        ("#### 10%", "10"),
        ("#### 3/4", "3/4"),
        ("#### 0050", "50"),
        ("I get 3 + 4 = 7, so \\boxed{42}. Check: 100 - 58 = 42, 1 2 3", "42"),
        ("The answer is $\\boxed{1,080}$.", "1080"),
        ("\\boxed{\\frac{1}{2}}", "1/2"),
        ("\\boxed{\\dfrac{3}{6}}", "1/2"),
        ("\\boxed{\\frac{8}{4}}", "2"),
        ("\\boxed{-\\frac{1}{2}}", "-1/2"),
        ("\\boxed{\\frac12}", "1/2"),
        ("\\boxed{\\text{18 dollars}}", "18"),
        ("\\boxed{\\$18}", "18"),
        ("\\boxed{90^\\circ}", "90"),
        ("\\boxed{\\boxed{5}}", "5"),
        ("\\boxed{\\sqrt{2}}", "\\sqrt{2}"),
        ("Step 1: 5 apples. Step 2: 8 apples. The answer is 13. Double-check: 5 + 8 = 13, with 2 left.", "13"),
        ("The answer is: $18", "18"),
        ("Answer: 25\nthat is 5 * 5 and 3 more", "25"),
        ("He had 20 and spent 5, so 15 remain", "15"),  # last number
        ("the temperature dropped to -3 degrees", "-3"),
        ("10-3", "3"),  # subtraction, not a negative number
        ("x = -2.50", "-2.5"),
        ("It costs $1,080 overall.", "1080"),
        ("The value is 7.", "7"),
    ],
)
def test_gsm8k_extract(text, expected):
    assert extract_answer("gsm8k", text) == expected


@pytest.mark.parametrize("text", ["", "   ", "no idea", "\U0001F642 \u00e9\u00e8", "NaN and inf", "####", "\\boxed{}"])
def test_gsm8k_garbage_is_none_and_zero(text):
    assert extract_answer("gsm8k", text) is None
    assert accuracy_reward("gsm8k", text, "18") == 0.0


@pytest.mark.parametrize(
    ("completion", "reference", "expected"),
    [
        ("#### 1,080", "1080", 1.0),
        ("#### 1080", "1,080", 1.0),  # reference with a thousands separator
        ("#### 18.00", "18", 1.0),
        ("#### 18.5", "18", 0.0),
        ("#### -3", "3", 0.0),
        ("#### 3", "-3", 0.0),
        ("\\boxed{\\frac{1}{2}}", "0.5", 1.0),
        ("#### 0.5", "1/2", 1.0),
        ("\\boxed{0.3333333333}", "1/3", 1.0),  # tiny tolerance
        ("\\boxed{0.33}", "1/3", 0.0),
        ("\\boxed{\\sqrt{4}}", "2", 1.0),  # math-verify
        ("\\boxed{2\\sqrt{2}}", "\\sqrt{8}", 1.0),  # math-verify, both LaTeX
        ("\\boxed{\\sqrt{3}}", "2", 0.0),
        ("The answer is 12 apples. I also saw 13 birds.", "12", 1.0),  # "answer is" beats the last number
        ("1" + "0" * 100, "1" + "0" * 100, 1.0),
        ("1" + "0" * 100, "1" + "0" * 99 + "1", 0.0),
        ("#### " + "9" * 5000, "9", 0.0),  # absurdly long number
        ("\\boxed{10^{10^{10^{10}}}}", "10", 0.0),  # must not make sympy hang
        ("\\boxed{100000!}", "10", 0.0),
        ("#### 5", "#### 5", 1.0),  # a full gold completion as reference also works
    ],
)
def test_gsm8k_accuracy(completion, reference, expected):
    assert accuracy_reward("gsm8k", completion, reference) == expected


# --------------------------------------------------------------------------------------------- MathQA


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("#### c", "c"),
        ("#### (C)", "c"),
        ("#### C) 30", "c"),
        ("#### a", "a"),
        ("#### \\boxed{d}", "d"),
        ("Answer: C", "c"),
        ("answer c", "c"),
        ("the answer is (c)", "c"),
        ("The answer is **(B)**.", "b"),
        ("so 30 * 2 = 60 answer : a", "a"),
        ("= 38 % answer is a .", "a"),
        ("the answer is a", "a"),
        ("ans : c", "c"),
        ("ans . a .", "a"),
        ("hence 45 option c", "c"),
        ("= 9 correct option : c", "c"),
        ("answer : option d", "d"),
        ("answer : - d", "d"),
        ("answer will be ( b )", "b"),
        ("my answer was a", "a"),
        ("e is the correct answer .", "e"),
        ("c should be the answer", "c"),
        ("d is thus the correct answer .", "d"),
        ("answer choice a is correct here .", "a"),
        ("\\boxed{c}", "c"),
        ("\\boxed{C}", "c"),
        ("\\boxed{\\text{(B)}}", "b"),
        ("I would pick (d).", "d"),
        ("a ) 10 b ) 20 c ) 30 so c )", "c"),
        ("= $ 12,500 e", "e"),
        ("so 9 members play both . c", "c"),
        ("= 2 / 5 , or c .", "c"),
        ("[ e ]", "e"),
        ("a ) 10 ( 2 + b ) = 5 and x", None),  # a label in prose is no pick; "b )" closes a parenthesis
        ("cis the answer", None),  # no letter glued to a word
        # priorities
        ("the answer is b, no wait\n#### d", "d"),  # #### wins
        ("(a) 10 (b) 20 (e) 50 ... so the answer is c", "c"),  # answer pattern beats the last (x)
        ("answer : b ... let me recheck ... answer : e", "e"),  # last answer pattern
        ("answer is (a), not (d)", "a"),
        ("the answer is c 330", "c"),
    ],
)
def test_mathqa_extract_letters(text, expected):
    assert extract_answer("mathqa", text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "no idea",
        "the answer is a multiple of 5",  # "a" as an English word
        "A train travels at a speed of 30 km / h for a while.",
        "It is a",
        "the answer is anything",
        "( 2 + a ) = 5",  # a variable closing a parenthesis, not an option label
        "f(a) = 3",
        "the answer is e.g. large",
        "\U0001F642",
    ],
)
def test_mathqa_no_letter_from_prose(text):
    assert extract_answer("mathqa", text) is None
    assert accuracy_reward("mathqa", text, "a") == 0.0


def test_mathqa_lone_a_word_does_not_hide_later_letter():
    assert extract_answer("mathqa", "the answer is a number between 1 and 5 . the answer is b") == "b"
    assert extract_answer("mathqa", "A shop sells a toy. Answer: D") == "d"


@pytest.mark.parametrize(
    ("text", "options", "expected"),
    [
        ("the answer is 30", OPTIONS, "c"),
        ("The answer is 30.", OPTIONS, "c"),
        ("#### 30", OPTIONS, "c"),
        ("\\boxed{30}", OPTIONS, "c"),
        ("I computed 12 + 18 = 30", OPTIONS, None),  # a bare final number commits to no option
        ("(a) 10 (b) 20 (c) 30 (d) 40\n#### 20", OPTIONS, "b"),  # #### value beats the echoed labels
        ("the answer is none of these", OPTIONS, "e"),  # non-numeric option text
        ("the answer is rs. 400", "a ) rs . 200 , b ) rs . 400 , c ) rs . 600 , d ) rs . 800 , e ) none", "b"),
        ("the answer is 400", "a ) rs . 200 , b ) rs . 400 , c ) rs . 600 , d ) rs . 800 , e ) none", "b"),
        ("the answer is 1,200", "a ) rs . 1 , 200 , b ) rs . 1 , 400 , c ) 3 , d ) 4 , e ) 5", "a"),
        ("the answer is 15/8", "a ) 15 / 8 ohms , b ) 8 / 15 ohms , c ) 2 ohms , d ) 1 ohm , e ) 3 ohms", "a"),
        ("the answer is 0.5", "a ) 1 / 4 , b ) 1 / 2 , c ) 3 / 4 , d ) 1 , e ) 2", "b"),
        ("the answer is 38%", "a ) 38 % , b ) 27.675 % , c ) 30 % , d ) data inadequate , e ) none", "a"),
        ("the answer is -5", "a ) - 5 , b ) 5 , c ) 0 , d ) 1 , e ) 2", "a"),
        ("the answer is 5 : 6", "a ) 5 : 6 , b ) 3 : 2 , c ) 4 : 8 , d ) 1 : 2 , e ) 7 : 8", "a"),
        ("the answer is 12", "['a ) 12', 'b ) 15', 'c ) 10', 'd ) 8', 'e ) 14']", "a"),  # list-repr options
        ("the answer is 4 π", "['a ) 4', 'b ) 4 π', 'c ) 16', 'd ) 8 π', 'e ) 16']", "b"),  # not 4
        ("the answer is 3 1 / 5", "a ) 2 , b ) 3 , c ) 3 1 / 5 , d ) 4 , e ) 4 4 / 5", "c"),  # not 3
        ("the answer is x + 2 x + 2", "a ) x + 2 , b ) x + 2 x , c ) x + 2 x + 2 , d ) 2 x , e ) 3", "c"),
        ("the answer is 45 m east", "a ) 35 m east , b ) 45 m west , c ) 1 , d ) 2 , e ) 45 m east", "e"),
        ("the answer is 40 days", "a ) 40 days , b ) 100 days , c ) 120 days , d ) 110 days , e ) 90 days", "a"),
        ("the answer is 30", "a ) 30 , b ) 30 , c ) 1 , d ) 2 , e ) 3", None),  # ambiguous value
        ("the answer is 31", OPTIONS, None),  # no option has that value
        ("the answer is 30", None, None),  # no options: a value cannot be mapped
        ("the answer is 30", "", None),
        ("the answer is 30", "not an options string", None),
        ("answer : c, which is 30", OPTIONS, "c"),  # a letter wins over a value
    ],
)
def test_mathqa_option_values(text, options, expected):
    assert extract_answer("mathqa", text, options) == expected


@pytest.mark.parametrize(
    ("completion", "reference", "options", "expected"),
    [
        ("Answer: C", "c", None, 1.0),
        ("answer c", "C", None, 1.0),
        ("answer c", "(c)", None, 1.0),
        ("answer c", "d", None, 0.0),
        ("the answer is 30", "c", OPTIONS, 1.0),
        ("the answer is 30", "b", OPTIONS, 0.0),
        ("the answer is 30", "c", "", 0.0),
        ("", "c", OPTIONS, 0.0),
        ("\x00\x01\x02 \ud7ff \U0010ffff", "c", OPTIONS, 0.0),
    ],
)
def test_mathqa_accuracy(completion, reference, options, expected):
    assert accuracy_reward("mathqa", completion, reference, options) == expected


# --------------------------------------------------------------------------------------------- StrategyQA


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Facts ... \n#### yes", "yes"),
        ("#### No.", "no"),
        ("#### **True**", "yes"),
        ("no wait... yes it is\n#### no", None),  # takes "no" back for "yes", then says "no" again: both
        ("no wait... yes it is\n#### yes", "yes"),
        ("So the answer is no.", "no"),
        ("Answer: Yes", "yes"),
        ("The answer is: **Yes**", "yes"),
        ("The answer is definitely no", "no"),
        ("answer: false", "no"),
        ("Yes. Caesar died before the printing press.", "yes"),
        ("No, there is no record of that.", "no"),
        ("True", "yes"),
        ("false", "no"),
        ("YES", "yes"),
        ("There is no evidence either way. I'd say yes overall.", "yes"),  # last yes/no word
        ("Yes, it seems so, but the answer is no.", None),  # both, never taken back: commits to nothing
        ("Yes. Wait, that's wrong: he died first. So the answer is no.", "no"),  # an explicit correction
        ("\\boxed{\\text{No}}", "no"),
    ],
)
def test_strategyqa_extract(text, expected):
    assert extract_answer("strategyqa", text) == expected


@pytest.mark.parametrize("text", ["", "maybe", "I do not know", "nobody knows", "yesterday", "\U0001F642"])
def test_strategyqa_garbage(text):
    assert extract_answer("strategyqa", text) is None
    assert accuracy_reward("strategyqa", text, "yes") == 0.0
    assert accuracy_reward("strategyqa", text, "no") == 0.0


@pytest.mark.parametrize(
    ("completion", "reference", "expected"),
    [
        ("#### yes", "yes", 1.0),
        ("#### yes", "no", 0.0),
        ("#### Yes", True, 1.0),  # a boolean column
        ("#### no", False, 1.0),
        ("#### no", "False", 1.0),
        ("#### true", "yes", 1.0),
    ],
)
def test_strategyqa_accuracy(completion, reference, expected):
    assert accuracy_reward("strategyqa", completion, reference) == expected


# --------------------------------------------------------------------------------------------- robustness


def _random_text(rng: random.Random) -> str:
    pieces = [
        "####", "\\boxed{", "}", "answer", "is", " ", "\n", "(", ")", "a", "c", "yes", "no", "$", ",", ".",
        "-", "\u2212", "1", "000", "3.5", "\\frac{", "/", "^", "!", "\u00e9", "\U0001F642", "\x00", "option",
    ]
    return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 60)))


def test_never_raises_on_arbitrary_text():
    rng = random.Random(0)
    for _ in range(300):
        text = _random_text(rng)
        for task, reference, options in (("gsm8k", "18", None), ("mathqa", "c", OPTIONS), ("strategyqa", "yes", None)):
            extract_answer(task, text, options)
            assert accuracy_reward(task, text, reference, options) in (0.0, 1.0)


def test_huge_inputs_are_fast():
    huge = ("blah 12 , answer ( " * 20_000) + "\n#### 7"
    start = time.perf_counter()
    assert accuracy_reward("gsm8k", huge, "7") == 1.0
    extract_answer("mathqa", huge, OPTIONS)
    extract_answer("strategyqa", huge)
    extract_answer("mathqa", "a" * 200_000, OPTIONS)
    extract_answer("mathqa", "x a ) " * 50_000, OPTIONS)
    extract_answer("gsm8k", "\\boxed{" * 50_000)
    extract_answer("gsm8k", "9" * 200_000)
    assert time.perf_counter() - start < 10


def test_accuracy_reward_inside_threads():
    """math-verify must run with its signal-based timeouts disabled (they fail off the main thread)."""
    cases = [
        ("gsm8k", "\\boxed{\\sqrt{4}}", "2", None, 1.0),  # goes through math-verify
        ("gsm8k", "\\boxed{2\\sqrt{2}}", "\\sqrt{8}", None, 1.0),
        ("gsm8k", "#### 1,080", "1080", None, 1.0),
        ("mathqa", "the answer is 30", "c", OPTIONS, 1.0),
        ("strategyqa", "Answer: no", "yes", None, 0.0),
    ]
    results: dict[int, float] = {}
    errors: list[BaseException] = []

    def work(index, case):
        try:
            results[index] = accuracy_reward(*case[:4])
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i, case)) for i, case in enumerate(cases)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert [results[i] for i in range(len(cases))] == [case[4] for case in cases]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(lambda case: accuracy_reward(*case[:4]), cases * 4)) == [c[4] for c in cases] * 4


# --------------------------------------------------------------------------------------------- TRL reward function


def test_make_reward_function_plain_and_conversational():
    reward = make_reward_function("gsm8k")
    assert reward.__name__ == "accuracy_gsm8k"
    prompts = [[{"role": "user", "content": "q"}]] * 4
    completions = [
        "#### 18",
        [{"role": "assistant", "content": "so #### 18"}],
        [{"role": "assistant", "content": "#### 18"}, {"role": "assistant", "content": "#### 17"}],  # last one
        [{"role": "assistant", "content": [{"type": "text", "text": "\\boxed{18}"}]}],  # content parts
    ]
    assert reward(prompts, completions, answer=["18"] * 4) == [1.0, 1.0, 0.0, 1.0]
    trl_kwargs = {"completion_ids": [[1]] * 4, "trainer_state": None, "log_extra": print, "log_metric": print}
    scores = reward(prompts=prompts, completions=completions, answer=["18"] * 4, expert=[0] * 4, **trl_kwargs)
    assert scores == [1.0, 1.0, 0.0, 1.0]
    with pytest.raises(ValueError):
        reward(prompts, completions, answer=["18"] * 3)


def test_make_reward_function_mathqa_options_column():
    reward = make_reward_function("mathqa")
    assert reward.__name__ == "accuracy_mathqa"
    completions = ["the answer is 30", "the answer is 30", "Answer: (c)", "garbage"]
    scores = reward(["p"] * 4, completions, answer=["c", "c", "c", "c"], options=[OPTIONS, "", None, OPTIONS])
    assert scores == [1.0, 0.0, 1.0, 0.0]
    assert reward(["p"], ["Answer: (c)"], answer=["c"]) == [1.0]


def test_synthetic_mathqa_grades_letters_only():
    """synth_mathqa: every style names its letter, so a value with no letter commits to nothing (strict letters);
    the metric keeps the benchmark's name."""
    reward = make_reward_function("synth_mathqa")
    assert reward.__name__ == "accuracy_mathqa"
    completions = ["the answer is 30", "#### 30", "Answer: (c)", "a 10 no , b 20 no , c 30 yes . answer c\n#### c"]
    assert reward(["p"] * 4, completions, answer=["c"] * 4, options=[OPTIONS] * 4) == [0.0, 0.0, 1.0, 1.0]
    assert extract_answer("synth_mathqa", "the answer is 30", OPTIONS) is None
    assert extract_answer("mathqa", "the answer is 30", OPTIONS) == "c"
    assert accuracy_reward("synth_mathqa", "find 30 : a 10 , b 20 , c 30\n#### c", "c", OPTIONS) == 1.0


def test_make_reward_function_strategyqa():
    reward = make_reward_function("strategyqa")
    completions = [[{"role": "assistant", "content": "No. #### no"}], "Yes.", ""]
    assert reward(["p"] * 3, completions, answer=["no", "no", "yes"]) == [1.0, 0.0, 0.0]


# --------------------------------------------------------------------------------------------- real data


@pytest.mark.parametrize("split", ["train", "test"])
def test_real_gsm8k_gold_answers(split):
    rows = _rows(f"gsm8k/{split}.jsonl")
    failures = []
    for index, row in enumerate(rows):
        final = row["answer"].rsplit("####", 1)[1].strip().replace(",", "")
        if accuracy_reward("gsm8k", row["answer"], final) != 1.0 or extract_answer("gsm8k", row["answer"]) != final:
            failures.append((index, final, extract_answer("gsm8k", row["answer"])))
    assert not failures, failures[:10]


def _strip_quotes(rationale: str) -> str:
    text = rationale.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    return text


def _plain_number(value: str) -> float | None:
    compact = value.replace(" ", "").replace(",", "")
    return float(compact) if re.fullmatch(r"-?[0-9]+(?:\.[0-9]+)?", compact) else None


@pytest.mark.parametrize("split", ["test", "dev"])
def test_real_mathqa_rationales(split):
    from meml.mathqa_options import parse_options

    rows = _rows(f"mathqa/{split}.jsonl")
    failures, value_failures, value_checked = [], [], 0
    raw_hits = raw_hits_with_options = 0
    for index, row in enumerate(rows):
        rationale, correct, options = _strip_quotes(row["Rationale"]), row["correct"], row["options"]
        if accuracy_reward("mathqa", rationale + "\n#### " + correct, correct, options) != 1.0:
            failures.append(index)
        raw_hits += extract_answer("mathqa", rationale) == correct
        raw_hits_with_options += extract_answer("mathqa", rationale, options) == correct
        values = {letter: _plain_number(text) for letter, text in parse_options(options).items()}
        value = values[correct]
        if value is None or sum(v is not None and abs(v - value) < 1e-9 for v in values.values()) != 1:
            continue
        value_checked += 1
        answer_value = parse_options(options)[correct]
        if accuracy_reward("mathqa", f"The answer is {answer_value}", correct, options) != 1.0:
            value_failures.append((index, answer_value, options))
    print(
        f"\nMathQA {split}: raw rationale -> correct letter: {raw_hits}/{len(rows)} "
        f"({raw_hits / len(rows):.1%}) without options, {raw_hits_with_options}/{len(rows)} "
        f"({raw_hits_with_options / len(rows):.1%}) with options; "
        f"{value_checked} numeric unique option values checked"
    )
    assert not failures, failures[:10]
    assert not value_failures, value_failures[:10]
    assert value_checked > len(rows) // 2
    assert raw_hits_with_options / len(rows) > 0.9


@pytest.mark.parametrize("split", ["train", "dev"])
def test_real_strategyqa_facts(split):
    rows = _rows(f"strategyqa/{split}.jsonl")
    failures = []
    for index, row in enumerate(rows):
        label = "yes" if row["answer"] else "no"
        completion = " ".join(row["facts"]) + "\n#### " + label
        if accuracy_reward("strategyqa", completion, label) != 1.0:
            failures.append(index)
        if accuracy_reward("strategyqa", completion, row["answer"]) != 1.0:
            failures.append(index)
    assert not failures, failures[:10]


def test_mathqa_letter_before_an_empty_final_marker_beats_the_last_number():
    """A policy learned to end with an empty '####' so the last-number fallback picked the letter for it
    (found in a tiny-setting RL run); the letter it wrote is its answer."""
    options = "a ) 11 , b ) 10 , c ) 9 , d ) 5 , e ) 6"
    assert extract_answer("mathqa", "3*3=9 , 9+2=11 , so d\n####", options) == "d"
    assert accuracy_reward("mathqa", "3*3=9 , 9+2=11 , so d\n####", "a", options) == 0.0
    assert extract_answer("mathqa", "9+2=11\n####", options) is None  # no letter, no answer statement: no pick
    assert extract_answer("mathqa", "so b\n#### d", options) == "d"


# --------------------------------------------------------------------------------------------- continuations


def _lm_eval_truncate(text: str) -> str:
    """What lm-eval 0.4.13 returns for a generation with our ``until`` (models/utils.postprocess_generated_text)."""
    for term in STOP_SEQUENCES:
        text = text.split(term)[0]
    return text


@pytest.mark.parametrize("stop", STOP_SEQUENCES)
@pytest.mark.parametrize(
    ("task", "own", "invented", "gold", "options"),
    [
        ("gsm8k", "She makes 9 * 2 = $18.\n#### 18", " John has 5 apples. How many?\n#### 20", "18", None),
        ("gsm8k", "She makes 9 * 2 = $18.\n#### 18", " John has 5 apples. How many?\n#### 20", "20", None),
        ("mathqa", "12 * 2 = 24 . answer : b", " a train ... answer : d", "b", OPTIONS),
        ("mathqa", "12 * 2 = 24 . answer : b", " a train ... answer : d", "d", OPTIONS),
        ("strategyqa", "Caesar died before it was built. So, no.", " Can a goat swim? Yes.\n#### yes", "no", None),
        ("strategyqa", "Caesar died before it was built. So, no.", " Can a goat swim? Yes.\n#### yes", "yes", None),
        ("gsm8k", "", " What is 2 + 2?\n#### 4", "4", None),  # a turn that starts with the stop: nothing of its own
    ],
)
def test_reward_and_lm_eval_stop_agree(stop, task, own, invented, gold, options):
    """An RL rollout runs on past an invented turn; lm-eval stops there. Both must be graded alike,
    and only the completion's own answer counts."""
    full = own + stop + invented
    expected = accuracy_reward(task, own, gold, options)
    assert accuracy_reward(task, full, gold, options) == expected
    assert accuracy_reward(task, _lm_eval_truncate(full), gold, options) == expected


def test_evaluation_tasks_stop_at_the_shared_stop_sequences(tmp_path):
    from meml.evaluation import task_config

    for temperature in (None, 0.7):
        config = task_config("t", tmp_path / "docs.jsonl", 64, temperature=temperature)
        assert config["generation_kwargs"]["until"] == list(STOP_SEQUENCES)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Q1: 3 + 4 = 7\nQ2: is 7 more than 5? yes\n#### yes", "yes"),  # numbered sub-questions are reasoning
        ("#### no\n\n**Question:** Is the sky green?\n#### yes", "no"),
        ("#### no\n## Question: Is the sky green?\n#### yes", "no"),
        ("<think>It is yes.</think>\nNo, it is not.", "no"),
        ("<think>It is yes. The answer is yes", None),  # the think block never closed
    ],
)
def test_own_answer_only(text, expected):
    assert extract_answer("strategyqa", text) == expected


# --------------------------------------------------------------------------------------------- references


@pytest.mark.parametrize(
    ("reference", "completion", "expected"),
    [
        ("Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\nShe makes 9 * 2 = $<<9*2=18>>18.\n#### 18",
         "#### 18", 1.0),
        ("Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\nShe makes 9 * 2 = $<<9*2=18>>18.\n#### 18",
         "#### 16", 0.0),
        ("He pays 1,000 + 80 = 1,080.\n#### 1,080", "The answer is 1080.", 1.0),
        ("\\frac{1}{2}", "#### 0.5", 1.0),
        ("1,080", "\\boxed{1{,}080}", 1.0),
    ],
)
def test_gsm8k_reference_forms(reference, completion, expected):
    assert accuracy_reward("gsm8k", completion, reference) == expected


# --------------------------------------------------------------------------------------------- arithmetic


@pytest.mark.parametrize(
    ("clause", "kind", "canonical"),
    [
        ("18", "value", "18"),
        ("$1,080.00 in total", "value", "1080"),
        ("3/4.", "value", "3/4"),  # the sentence's period does not eat the denominator
        (".5", "value", "0.5"),
        ("2 1/2 cups", "value", "5/2"),
        ("eighteen dollars", "value", "18"),
        ("twenty-five", "value", "25"),
        ("one hundred and five", "value", "105"),
        ("29 + 1 = 30", "value", "30"),  # an equation by its result
        ("3 apples + 2 apples = 5 apples.", "value", "5"),
        ("16 - 3 - 4", "value", "9"),
        ("3 * 6 = $18", "value", "18"),
        ("8, not 4", "value", "8"),
        ("18 (that is 3 * 6)", "value", "18"),
        ("0.5 (or 1/2)", "value", "0.5"),  # the same value twice
        ("25 or 35", "hedge", None),
        ("between 4 and 24", "hedge", None),
        ("not 4, it's 8", "hedge", None),
        ("either 5 or 6", "hedge", None),
        ("5, 6", "hedge", None),
        ("at least 4", "hedge", None),
        ("roughly 25 to 35", "hedge", None),
        ("no idea", "none", None),
    ],
)
def test_parse_clause(clause, kind, canonical):
    from meml.rewards.clause import parse_clause

    verdict = parse_clause(clause)
    assert (verdict.kind, verdict.canonical) == (kind, canonical)


@pytest.mark.parametrize(
    ("latex", "canonical"),
    [
        ("\\frac{3}{4}", "3/4"),
        ("\\dfrac{36}{2}", "18"),
        ("1{,}080", "1080"),
        ("\\$18", "18"),
        ("18 \\text{ dollars}", "18"),
        ("\\sqrt{324}", "18"),
        ("\\sqrt[3]{27}", "3"),
        ("\\binom{10}{2}", "45"),
        ("5!", "120"),
        ("2\\frac{1}{2}", "5/2"),
        ("3 \\times 6", "18"),
        ("2^{10}", "1024"),
        ("x = 18", "18"),
        ("\\left(\\frac{1}{2}\\right)", "1/2"),
    ],
)
def test_latex_arithmetic(latex, canonical):
    from meml.rewards.clause import parse_clause
    from meml.rewards.latex import to_plain

    assert parse_clause(to_plain(latex), math=True).canonical == canonical


@pytest.mark.parametrize("latex", ["\\sqrt{2}", "2x", "\\pi r^2", "18 + x", "x + y"])
def test_latex_that_is_not_arithmetic_goes_to_math_verify(latex):
    from meml.rewards.clause import parse_clause
    from meml.rewards.latex import to_plain

    assert parse_clause(to_plain(latex), math=True).kind == "other"
