def plan():
    return "built"
