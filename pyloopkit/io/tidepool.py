def looks_like(head):
    return False
