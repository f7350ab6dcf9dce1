"""Getting a Trace from code netdoctor did not write.

* :mod:`.script`   runs a file as ``__main__`` in a child process and returns its Trace
                   (``netdoctor diagnose script.py``); it owns processes, files, time,
                   stdin/stdout and exit codes.
* :mod:`.child`    the child process's side: runs the script under an Observer.
* :mod:`.progress` progress messages from the child and the live display in the terminal.
* :mod:`.objects`  the Observer: finds arrays on the user's objects and module globals,
                   infers their roles and records what they do.

Nothing is imported here, so that ``import netdoctor.observe.script`` stays cheap.
"""
