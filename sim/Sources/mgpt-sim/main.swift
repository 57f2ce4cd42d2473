print("mgpt-sim: not yet")
