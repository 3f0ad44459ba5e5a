#!/bin/bash
# End-to-end fidelity on the real-world corpus (${SHMDEMUX_CORPUS:-../shared/
# corpus}): every file, opened by path, as stdin and through a pipe, must give exactly
# ffprobe's packets, or fail cleanly where ffprobe fails (fidelity-one.sh).
# Skips (77) when the corpus is not there.
. "$(dirname "$0")/lib.sh"
shm_init
corpus=$(shm_corpus_dir) || exit $?
mapfile -t files < <(find "$corpus" -maxdepth 1 -type f \
	! -name MANIFEST.tsv ! -name NOTICE ! -name '.*' | LC_ALL=C sort)
[ ${#files[@]} -gt 0 ] || shm_skip "corpus $corpus holds no files"
shm_broker_start

shm_fidelity_all "${files[@]}"
echo "summary: $SHM_PASSED passed, $SHM_FAILED failed (${#files[@]} corpus files, each by path, as stdin and through a pipe)"
[ "$SHM_FAILED" -eq 0 ]
