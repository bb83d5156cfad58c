"""Facts about the grade that the student checker states: written by `release`."""

HIDDEN_CHECKS = 2
HIDDEN_POINTS = 3
MAX_SCORE = 36
FLAVOUR = 'cs231n'
STYLE = 'inverted'  # the dropout style of the release's flavour

# The library files you were given, by their SHA-256: the grader uses its own copy of each.
GIVEN_FILES = {
    'nnlab/__init__.py': '7fc106f9d48488dc13d084637d6ffe1d95cd4d2f697a036982de73f6de1f65cb',
    'nnlab/classifiers/__init__.py': '917e1b9795e630c6259e390ccae4bb6caa32a925b1ef735908576d9f68d0935b',
    'nnlab/data_utils.py': '5ad424cae8a0dc563dffbf2448788f30dfdcbdd92f8e4180d5a860283ad7c034',
    'nnlab/gradient_check.py': 'be8beef6ede6e08788986be20ca2140a95ff0b41c7f0938c74cef789b7600e1e',
    'nnlab/layer_utils.py': 'b8c5355f16e05cfff655e99b27aa177c20530f5d01d4fda076feae509c5001cd',
    'nnlab/optim.py': '80aa2b65d3227cb24b0df0f9bd5e25fef1fc1258d64c8ac9aefd6b821a1fd38c',
    'nnlab/scaffold.py': 'f28748c43476caee5a6f68f5f5ccfa9f4f5c91c6ea80e46a98981aed713da60f',
    'nnlab/solver.py': '0bd9f941c1214bbd85e555e9a8965ab6d131f3090b1aa6e0be6b48916d1219f1',
}
