"""The survivors of issue #31's hand-made mutation run, each applied again (in a copy of the tracked
tree, never the working tree) and run against the tests written to kill it: each must now fail.

    python bench/mutation_survivors.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1]
CASES = [
    (
        "surgery/domains.py: conditional parts overwritten (= for +=)",
        "gan_adapters/surgery/domains.py",
        "condition[key] += weights[name] * value.double().cpu()",
        "condition[key] = weights[name] * value.double().cpu()",
        "tests/test_domain_runs.py::test_conditional_adapters_blend_their_conditioning_layers_too",
    ),
    (
        "several.py: the reserved name 'blended' not avoided",
        "gan_adapters/adapted/several.py",
        "while name in taken or name == BLENDED:",
        "while name in taken:",
        "tests/test_domain_runs.py::test_domain_names_avoid_the_blend_name_and_clashes_between_folders",
    ),
    (
        "several.py: class embeddings summed without their weights",
        "gan_adapters/adapted/several.py",
        "learned.embedding.copy_(sum(w * embeddings[k] for k, w in weights.items()))",
        "learned.embedding.copy_(sum(embeddings[k] for k, w in weights.items()))",
        "tests/test_domain_runs.py::test_class_embeddings_blend_with_the_adapters_weights",
    ),
    (
        "several.py: a one-name blend {A: 0.5} taken as A itself",
        "gan_adapters/adapted/several.py",
        "if list(weights.values()) == [1.0]:",
        "if len(weights) == 1:",
        "tests/test_domain_runs.py::test_a_one_name_blend_is_that_fraction_of_its_change",
    ),
    (
        "several.py: two folders named alike not made unique",
        "gan_adapters/adapted/several.py",
        "while name in taken or name == BLENDED:",
        "while name == BLENDED:",
        "tests/test_domain_runs.py::test_domain_names_avoid_the_blend_name_and_clashes_between_folders",
    ),
    (
        "probe.py: a successful channels_last probe reports contiguous",
        "gan_adapters/training/probe.py",
        "return torch.channels_last, _forward_backward(bundle, labels, autocast)",
        "return torch.contiguous_format, _forward_backward(bundle, labels, autocast)",
        "tests/test_probe.py::test_a_model_that_runs_channels_last_is_reported_and_left_channels_last",
    ),
    (
        "probe.py: luma weights in BGR order",
        "gan_adapters/training/probe.py",
        "[0.299, 0.587, 0.114]",
        "[0.114, 0.587, 0.299]",
        "tests/test_probe.py::test_greyscale_targets_are_luma_of_red_green_blue_in_that_order",
    ),
    (
        "probe.py: range warning only when both ends are out (or -> and)",
        "gan_adapters/training/probe.py",
        "if seen[0] < low - margin or seen[1] > high + margin:",
        "if seen[0] < low - margin and seen[1] > high + margin:",
        "tests/test_probe.py::test_an_output_beyond_its_range_at_either_end_is_warned_about",
    ),
    (
        "probe.py: the probe's gradients not cleared",
        "gan_adapters/training/probe.py",
        "        param.grad = None",
        "        pass",
        "tests/test_probe.py::test_the_probe_leaves_no_gradients_and_no_changed_state",
    ),
    (
        "probe.py: attributes set in forward not restored",
        "gan_adapters/training/probe.py",
        "with attributes_restored(model), autocast():",
        "with autocast():",
        "tests/test_probe.py::test_the_probe_leaves_no_gradients_and_no_changed_state",
    ),
    (
        "files.py: a lock without a pid counts as live forever",
        "gan_adapters/files.py",
        "return age > UNWRITTEN_LOCK_SECONDS",
        "return False",
        "tests/test_files.py::test_a_lock_with_no_pid_or_pid_zero_is_stale_and_a_live_or_foreign_one_is_not",
    ),
    (
        "files.py: another user's live process (PermissionError) counts as dead",
        "gan_adapters/files.py",
        "    except PermissionError:\n        return True",
        "    except PermissionError:\n        return False",
        "tests/test_files.py::test_a_lock_with_no_pid_or_pid_zero_is_stale_and_a_live_or_foreign_one_is_not",
    ),
]


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="survivors-") as folder:
        root = Path(folder)
        tracked = subprocess.run(
            ["git", "ls-files"], cwd=SOURCE, capture_output=True, text=True
        ).stdout.split()
        for name in tracked:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(SOURCE / name, root / name)
        killed = 0
        for what, path, old, new, test in CASES:
            file = root / path
            original = file.read_text()
            assert old in original, (what, old)
            file.write_text(original.replace(old, new, 1))
            command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", test]
            result = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=600)
            file.write_text(original)
            killed += result.returncode != 0
            print(("killed   " if result.returncode else "SURVIVED ") + f"{what}  ({test})", flush=True)
        print(f"{killed}/{len(CASES)} killed")


if __name__ == "__main__":
    main()
