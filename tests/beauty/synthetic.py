"""A synthetic frontal face: 68 iBUG points, for tests that need plausible landmarks."""

import numpy as np


def synthetic_face(scale=1.0, offset=(0.0, 0.0)):
    """68 iBUG points of a plausible frontal face, about 160 px wide at scale 1."""
    lm = np.zeros((68, 2))
    t = np.linspace(np.pi, 0, 17)  # jaw: a half ellipse from the right ear to the left
    lm[0:17] = np.stack([100 + 80 * np.cos(t), 100 + 100 * np.sin(t)], 1)
    lm[17:22] = np.stack([np.linspace(40, 85, 5), [72, 66, 64, 65, 68]], 1)
    lm[22:27] = np.stack([np.linspace(115, 160, 5), [68, 65, 64, 66, 72]], 1)
    lm[27:31] = np.stack([np.full(4, 100.0), np.linspace(80, 125, 4)], 1)
    lm[31:36] = np.stack([np.linspace(86, 114, 5), [135, 138, 140, 138, 135]], 1)

    def eye(cx):
        a = np.linspace(0, 2 * np.pi, 7)[:-1]
        return np.stack([cx - 14 * np.cos(a), 88 - 6 * np.sin(a)], 1)

    lm[36:42] = eye(68)
    lm[42:48] = eye(132)
    a = np.linspace(0, 2 * np.pi, 13)[:-1]
    lm[48:60] = np.stack([100 - 28 * np.cos(a), 165 - 10 * np.sin(a)], 1)
    a = np.linspace(0, 2 * np.pi, 9)[:-1]
    lm[60:68] = np.stack([100 - 18 * np.cos(a), 165 - 3 * np.sin(a)], 1)
    return lm * scale + np.asarray(offset)
