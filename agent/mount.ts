// The mount guard (issue 22): a backup directory on a share must be that share, not the empty directory a
// mount point is while the share is not mounted (on Unraid, /mnt/remotes/<share> exists either way). The
// rule, here and in the host step (components/hostDirectories.ts): the directory or its parent is a mount
// point. Inside the container that reads from /proc/self/mountinfo: the bind mount of the directory shows
// its path within the filesystem it lives on (field 4, "root"): "/" when the directory is a mount point,
// "/<name>" when its parent is, deeper when neither is.

/** The mountinfo entry of `mountPoint` (the last one wins, as mounts stack), or undefined. */
export function mountRoot(mountinfo: string, mountPoint: string): { root: string; fsType: string } | undefined {
    let found: { root: string; fsType: string } | undefined;
    for (const line of mountinfo.split("\n")) {
        const f = line.split(" ");
        if (f.length < 10) continue;
        // Fields: id parent major:minor root mountpoint options [optional...] - fstype source superoptions.
        const unescape = (s: string) => s.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
        if (unescape(f[4]) !== mountPoint) continue;
        const dash = f.indexOf("-", 6);
        found = { root: unescape(f[3]), fsType: dash > 0 ? f[dash + 1] : "?" };
    }
    return found;
}

/** What is wrong with the backup directory when it must be a mount, or undefined when it is one. */
export function mountProblem(mountinfo: string, dir: string, hostDir: string): string | undefined {
    const m = mountRoot(mountinfo, dir);
    const fix =
        "mount the share (on Unraid: Unassigned Devices, or the NFS/SMB share), then run `npm run up` again; or set `backupRequireMount` to false if the backups are meant to be on this disk";
    if (!m) return `the backup directory ${hostDir} is not mounted into the backup container at ${dir}: ${fix}`;
    const depth = m.root.split("/").filter(Boolean).length;
    if (depth <= 1) return undefined;
    return `the backup directory ${hostDir} is not on a mounted share (neither it nor its parent is a mount point on the Docker host; it is ${m.root} on a ${m.fsType} filesystem): nothing written; ${fix}`;
}
