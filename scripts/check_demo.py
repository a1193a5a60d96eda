"""Compares `switchyard eval`'s count of correct test images with PyTorch's on the same weights."""
import json
import re
import sys

reference = json.load(open(sys.argv[1]))
match = re.search(r"\((\d+) / (\d+) correct\)", open(sys.argv[2]).read())
if not match:
    sys.exit("demo: no accuracy line in the eval output")
got, total = int(match.group(1)), int(match.group(2))
want = reference["torch_correct"]
verdict = "same as PyTorch" if got == want else f"DIFFERENT from PyTorch ({got - want:+d})"
print(f"PyTorch on the same weights: {want} / {reference['test_images']} correct; Switchyard: {got} / {total} -> {verdict}")
sys.exit(0 if got == want else 1)
