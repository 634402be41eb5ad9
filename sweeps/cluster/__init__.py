"""Ray itself: an embedded session or a cluster joined, its resources, its Ray Jobs. May
import plan (a job ships a spec) and analysis; never run or record."""
