"""Ridge lighting: flank samples past the valid data are not judged."""

from __future__ import annotations

import numpy as np
import shapely

from fortmap.detect.berm_lighting import ridge_lighting


def test_flanks_reaching_invalid_pixels_are_not_judged():
    # soil east of column 50, fill west of it; a line along column 52 with the sun in the east
    # looks lit as a ridge (bright sun side, "dark" far side) unless the fill is known
    grey = np.zeros((100, 100), np.float32)
    grey[:, 50:] = 0.6
    line = shapely.LineString([(52, 10), (52, 90)])
    assert ridge_lighting(grey, line, 3.0, 90.0, 40.0) is not None
    valid = grey > 0
    assert ridge_lighting(grey, line, 3.0, 90.0, 40.0, valid=valid) is None
    # away from the edge a lit east flank and a shaded west flank are judged: a ridge
    grey[:, 75:79] = 0.8
    grey[:, 71:75] = 0.3
    lit = ridge_lighting(grey, shapely.LineString([(75, 10), (75, 90)]), 3.0, 90.0, 40.0,
                         valid=valid)  # fmt: skip
    assert lit is not None and lit["consistent"] == 1.0
