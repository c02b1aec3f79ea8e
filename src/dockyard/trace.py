import os, time
_F = os.environ.get("DYTRACE")
def mark(label):
    if _F:
        with open(_F, "a") as f:
            f.write(f"{time.time()*1000:.1f} {os.getpid()} {label}\n")
