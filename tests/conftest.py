import sys
from pathlib import Path

# Test helper modules (storage_helpers, crash_worker) import by their plain names.
sys.path.insert(0, str(Path(__file__).parent))
