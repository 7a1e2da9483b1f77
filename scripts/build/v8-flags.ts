/**
 * V8's heap flags for drain-init's own Node, in both ways it starts: bin/drain-init passes them on Node's
 * command line (the same list, written there), the release executables carry them in their single-executable
 * configuration (scripts/build/binary.ts). drain-init logs what it got (`execArgv` in its first line).
 *
 * A young generation of at most 1 MB and an old one grown by half before its next full collection, instead of
 * V8's defaults (up to 16 MB semi-spaces, a heap grown up to fourfold): under a busy endpoint (a 60,000-job
 * drain of no-op jobs, four alternations) drain-init's VmRSS peaked at 88 to 97 MB against 208 to 222 MB,
 * for about 5 % more of its CPU per job and the same throughput; on a slower host (scripts/bench/endpoint.ts,
 * both builds in each of three rounds) 88 against 138 to 142 MB, with less CPU per job and more jobs/s in
 * every round. Its memory counts against the container's limit, where the worker needs it.
 */
export const V8_FLAGS: readonly string[] = ['--max-semi-space-size=1', '--heap-growing-percent=50'];
