"""
Placeholder
===========

A temporary check that the gallery builds.
"""
import matplotlib.pyplot as plt
import numpy as np

import convlab

x = np.zeros((16, 16))
x[8, 8] = 1
plt.imshow(convlab.correlate(x, np.ones((3, 3)), "same"))
