"""The instructor's one choice for this assignment: which dropout the course teaches.

DROPOUT_STYLE is read by nnlab.layers.Dropout, by the notebook (which tells students what to write)
and by the grader, so changing it here and releasing again switches the whole assignment:

- "vanilla", as in Saito's "Deep Learning from Scratch": in training a kept unit passes unchanged
  and a dropped one gives 0; at test time every unit passes, multiplied by 1 - dropout_ratio.
- "inverted", as most frameworks do it: in training a kept unit is divided by 1 - dropout_ratio; at
  test time the layer passes its input through unchanged.
"""

DROPOUT_STYLE = "vanilla"

DROPOUT_STYLES = ("vanilla", "inverted")
