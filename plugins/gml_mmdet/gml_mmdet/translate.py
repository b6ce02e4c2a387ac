"""placeholder"""


def translate(config, source=""):
    return None
