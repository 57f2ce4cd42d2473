print("mgptd: not yet")
