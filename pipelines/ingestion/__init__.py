"""The ingest: plan what changed (``plan``), read, chunk and embed it (``front``, in threads or a child process:
``running``), write it to the store (``writer``); ``events`` pass between the two ends, ``report`` says what was
done."""
