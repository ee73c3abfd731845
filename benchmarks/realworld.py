"""gradlint on the models people write: the corpus in ``benchmarks/realworld/``.

Each file there is a model as users write it, after one pattern of popular public code (a diffusion
U-Net called with timesteps, DiT's adaLN-Zero blocks, nanoGPT, a minimal Mamba, a KAN, a weight-normed
TCN, spectral-normed GAN discriminators, a VAE, seq2seq with encoder memory, word-level language models,
a file full of helper modules, a CIFAR ResNet-110, lucidrains' ViT, DCGAN, a makemore MLP, a U-Net,
a tutorial GPT without its init), with the published initialisation and, where the original has a
known problem, that problem.  Each docstring names its source.

The lint table runs the command line on each file as a user would (discovery, helpers skipped, one
thread, JSON) and prints, per model: the verdict and codes, the capture tier, parameter coverage, the
data path and its spine points, effective / compositional depth, residual blocks with a measured
dilution, seconds, and whether the verdict is the one ``EXPECTED`` gives (its known problem flagged at
warning or above, and nothing at warning or above otherwise).

``--train`` trains, side by side on data that needs no download (a Markov-chain text, scikit-learn's
digits, as images and as pixel sequences), each model gradlint flags at warning or above as written
and with the fix the finding names, at its published optimiser, over three seeds: the evidence that
the finding is true.  It needs scikit-learn.

    python benchmarks/realworld.py [--small] [--models nanogpt,dit] [--json rows.json]
    python benchmarks/realworld.py --train [--steps 600]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "benchmarks" / "realworld"

# model target -> (codes its known problem must raise at warning or above, why the verdict is right).
# Models with no known problem must get no warning or error: each trains with its published recipe.
EXPECTED: dict[str, tuple[tuple[str, ...], str]] = {
    "big_logits_lm.py:GPTLanguageModel": (("GL303",), "its head is tied to an N(0, 1) embedding with no re-init: "
                                          "cross-entropy at init 58x ln V, every token's softmax saturated"),
    "dcgan.py:build_generator": ((), "pytorch/examples' DCGAN trains with its N(0, 0.02) init"),
    "dcgan.py:build_discriminator": ((), "pytorch/examples' DCGAN trains with its N(0, 0.02) init"),
    "ddpm_unet.py:build": ((), "Ho et al.'s U-Net trains from this init (its inner path is bypassed by the skips at "
                           "init, by design)"),
    "dit.py:DiT": ((), "adaLN-Zero is the init the DiT paper recommends"),
    "efficient_kan.py:KAN": ((), "efficient-kan trains on MNIST from this init"),
    "helpers_file.py:TransformerLM": ((), "a pre-norm Transformer LM with default inits; its helpers are components"),
    "lstm_lm.py:build": ((), "pytorch/examples' word-level LSTM reaches perplexity ~117 on WikiText-2"),
    "mamba_minimal.py:build": (("GL303",), "its N(0, 1) embedding is tied to the head: logits of std 11, cross-entropy "
                               "at init 12x ln V"),
    "nanogpt.py:build": ((), "nanoGPT's shakespeare-char recipe"),
    "nanogpt.py:build_deep": ((), "nanoGPT's scaled residual init keeps a 48-layer GPT shallow at init"),
    "resnet110_cifar.py:build": ((), "akamaster's ResNet-110 reaches 93.5% on CIFAR-10"),
    "seq2seq_transformer.py:build": ((), "the PyTorch translation tutorial trains on Multi30k"),
    "sngan_discriminator.py:Discriminator": (("GL005",), "its own spectral-norm wrapper calls module.forward directly: "
                                             "nothing can be measured, and the report must not pass"),
    "sngan_torch_sn.py:build_parametrized": ((), "SN-GAN discriminators train with spectral norm"),
    "sngan_torch_sn.py:build_legacy": ((), "SN-GAN discriminators train with spectral norm"),
    "tanh_mlp.py:MakemoreMLP": ((), "makemore's MLP after its fixes (small last layer, gain-corrected tanh layers)"),
    "tcn.py:build": ((), "locuslab's TCN reaches 97-99% on sequential MNIST"),
    "transformer_lm.py:build": ((), "pytorch/examples' word-level Transformer trains on WikiText-2"),
    "unet_seg.py:build": ((), "milesial's U-Net reaches Dice 0.988 on Carvana"),
    "vae.py:VAE": ((), "pytorch/examples' VAE trains on MNIST"),
    "vit_lucidrains.py:ViT": ((), "its torch.randn class token and position embedding outweigh the patches and the GSC "
                              "falls 15x where they join (GL304, GL102: info), but trained side by side the std-1 "
                              "ViT learns faster than with std 0.02 (--train)"),
}


def lint(path: Path, small: bool, timeout: float) -> dict:
    """The command line's JSON report of one corpus file (or its ``small`` configuration)."""
    target = f"{path.relative_to(ROOT)}:small" if small else str(path.relative_to(ROOT))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "gradlint", target, "--format", "json", "--threads", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
    seconds = time.perf_counter() - start
    try:
        doc = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return {"file": path.name, "exit": proc.returncode, "seconds": seconds, "error": proc.stderr.strip()[-400:],
                "results": [], "skipped": []}
    return {"file": path.name, "exit": proc.returncode, "seconds": seconds, "results": doc["results"],
            "skipped": doc.get("skipped", [])}


def row(file: str, r: dict, small: bool) -> dict:
    """One model's figures from its JSON result."""
    name = r["target"].rsplit(":", 1)[-1]
    key = f"{file}:{name}"
    if small:
        key = next((k for k in EXPECTED if k.startswith(f"{file}:")), key)
    if not r["ok"]:
        return {"model": key, "verdict": "not analysed", "error": r["error"]["message"]}
    s, p = r["summary"], r["probe"]
    warn = sorted({f["code"] for f in r["findings"] if f["severity"] in ("warning", "error")})
    codes = ", ".join(f"{f['code']} {f['severity']}" for f in r["findings"])
    verdict = max((f["severity"] for f in r["findings"]), key=["info", "warning", "error"].index, default="clean")
    blocks = r["residual_blocks"]
    expected, why = EXPECTED.get(key, ((), "not in EXPECTED"))
    side = [x["name"] for x in p["inputs"] if x["role"] in ("conditioning", "encoder")]
    return {
        "model": key, "verdict": verdict, "codes": codes, "warn": warn, "trace": r["trace"],
        "coverage": s["parameter_coverage"], "data": p["data_input"], "side": side, "spine_points": s["spine_points"],
        "effective_depth": s["effective_depth"], "compositional_depth": s["compositional_depth"],
        "blocks": len(blocks), "blocks_measured": sum(b["dilution"] is not None or b["zero_branch"] for b in blocks),
        "expected": list(expected), "why": why,
        "as_expected": set(expected) <= set(warn) and not (set(warn) - set(expected)) if key in EXPECTED else None,
    }


def table(rows: list[dict], seconds: dict[str, float]) -> str:
    out = ["| model | verdict | findings | capture | coverage | data path (side inputs) | spine points | "
           "effective / compositional depth | blocks (k measured) | lint s | as expected |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for x in rows:
        if "error" in x:
            out.append(f"| {x['model']} | not analysed | {x['error'][:80]} | | | | | | | | |")
            continue
        eff = "n/a" if x["effective_depth"] is None else f"{x['effective_depth']:.1f}"
        side = f" ({', '.join(x['side'])})" if x["side"] else ""
        cov = "n/a" if x["coverage"] is None else f"{x['coverage']:.2f}"
        out.append(f"| {x['model']} | {x['verdict']} | {x['codes'] or '-'} | {x['trace']} | {cov} | {x['data']}{side} | "
                   f"{x['spine_points']} | {eff} / {x['compositional_depth']} | {x['blocks']} ({x['blocks_measured']}) | "
                   f"{seconds[x['model'].split(':')[0]]:.1f} | {'yes' if x['as_expected'] else 'NO'} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="lint each file's small() configuration")
    parser.add_argument("--models", help="comma-separated file stems (default: every file)")
    parser.add_argument("--json", help="write the rows here")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--train", action="store_true", help="the training evidence behind each warning and error")
    parser.add_argument("--steps", type=int, default=600, help="training steps per run (--train)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per variant (--train)")
    args = parser.parse_args()
    if args.train:
        from realworld_training import evidence

        evidence(args.steps, args.seeds, args.models.split(",") if args.models else None)
        return
    files = sorted(CORPUS.glob("*.py"))
    if args.models:
        wanted = set(args.models.split(","))
        files = [f for f in files if f.stem in wanted]
    rows, seconds, skipped = [], {}, []
    for path in files:
        found = lint(path, args.small, args.timeout)
        seconds[path.name] = found["seconds"]
        if "error" in found:
            rows.append({"model": path.name, "verdict": "not analysed", "error": found["error"]})
        rows += [row(path.name, r, args.small) for r in found["results"]]
        skipped += [(s["target"], s["why"]) for s in found["skipped"]]
        print(f"{path.name}: exit {found['exit']}, {found['seconds']:.1f} s", file=sys.stderr)
    print(table(rows, seconds))
    print()
    analysed = [x for x in rows if "error" not in x]
    low = [x["model"] for x in analysed if x["coverage"] is not None and x["coverage"] < 0.9]
    print(f"{len(analysed)} models analysed, {len(rows) - len(analysed)} not; coverage below 0.9: "
          f"{', '.join(low) or 'none'}; as expected: {sum(bool(x['as_expected']) for x in analysed)} of {len(analysed)}; "
          f"helpers skipped: {len(skipped)}; lint seconds in all: {sum(seconds.values()):.1f}")
    for x in analysed:
        if x["warn"]:
            print(f"- {x['model']}: {', '.join(x['warn'])}: {x['why']}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
