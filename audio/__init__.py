"""Speech enhancement and dereverberation vertical (issue 3: not built yet)."""
