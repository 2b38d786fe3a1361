import numpy as np
from PIL import Image


def handler(event, context):
    return {"size": Image.fromarray(np.zeros((2, 3), dtype=np.uint8)).size}
