import { runSeed, formatViolation } from '@tideline/sim'
const r = await runSeed({ seed: Number(process.argv[2]), faults: 'all' })
console.log(JSON.stringify({ ...r.stats, resumeMs: undefined, catchUpMs: undefined }))
for (const v of r.violations.slice(0, 30)) console.log(formatViolation(v).slice(0, 600))
