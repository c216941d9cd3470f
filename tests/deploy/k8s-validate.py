#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""k8s-validate.py [--self-test] DIR

Structural checks on the Kubernetes manifests under DIR (every *.yaml, recursively),
offline: no cluster and no kubectl.  Each directory holding a kustomization.yaml is
one unit; names are resolved within it.
  * every document parses and has apiVersion (the expected one for its kind), kind,
    metadata.name;
  * a kustomization lists every manifest of its directory, and only existing files;
  * Deployment/DaemonSet: selector.matchLabels is contained in the template's labels;
    every container has an image, CPU+memory requests and limits, readiness and
    liveness probes whose ports name a declared container port, and a securityContext
    with allowPrivilegeEscalation false, readOnlyRootFilesystem true, capabilities drop
    ALL and add nothing but NET_BIND_SERVICE; runAsNonRoot at pod or container level;
  * Service: ClusterIP, ports 53/UDP and 53/TCP, a selector matching a workload whose
    container declares each targetPort with the same protocol;
  * PodDisruptionBudget: selector matches a workload, minAvailable below its replicas;
  * HorizontalPodAutoscaler (autoscaling/v2): scaleTargetRef names a Deployment of the
    same unit, a CPU Resource metric, minReplicas <= maxReplicas, CPU requests set.
With --self-test, also breaks the manifests in memory in known ways and checks each
break is reported (so the checks are shown to be able to fail).
Needs python3-yaml (Debian: apt-get install python3-yaml).
"""
import copy
import os
import sys

import yaml

API = {
    "Namespace": "v1",
    "Service": "v1",
    "Deployment": "apps/v1",
    "DaemonSet": "apps/v1",
    "PodDisruptionBudget": "policy/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
    "Kustomization": "kustomize.config.k8s.io/v1beta1",
}
WORKLOADS = ("Deployment", "DaemonSet")


def load(root):
    """Return {unit_dir: {filename: [docs]}}."""
    units = {}
    for d, _, files in os.walk(root):
        for f in sorted(files):
            if f.endswith((".yaml", ".yml")):
                with open(os.path.join(d, f), encoding="utf-8") as fh:
                    docs = [x for x in yaml.safe_load_all(fh) if x is not None]
                units.setdefault(d, {})[f] = docs
    return units


def labels_match(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_container(where, c, pod_sc, problems):
    name = c.get("name", "?")
    w = f"{where} container {name}"
    if not c.get("image"):
        problems.append(f"{w}: no image")
    res = c.get("resources") or {}
    for part in ("requests", "limits"):
        for r in ("cpu", "memory"):
            if r not in (res.get(part) or {}):
                problems.append(f"{w}: no resources.{part}.{r}")
    ports = c.get("ports") or []
    port_ids = {p.get("name") for p in ports} | {p.get("containerPort") for p in ports}
    for probe in ("readinessProbe", "livenessProbe"):
        p = c.get(probe)
        if not p:
            problems.append(f"{w}: no {probe}")
            continue
        handlers = [h for h in ("httpGet", "tcpSocket", "exec", "grpc") if h in p]
        if len(handlers) != 1:
            problems.append(f"{w}: {probe} needs exactly one handler, has {handlers}")
            continue
        h = p[handlers[0]]
        if handlers[0] == "exec":
            if not h.get("command"):
                problems.append(f"{w}: {probe} exec has no command")
        elif h.get("port") not in port_ids:
            problems.append(f"{w}: {probe} port {h.get('port')!r} is not a declared container port")
    sc = c.get("securityContext")
    if not sc:
        problems.append(f"{w}: no securityContext")
        sc = {}
    if sc.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{w}: allowPrivilegeEscalation is not false")
    if sc.get("readOnlyRootFilesystem") is not True:
        problems.append(f"{w}: readOnlyRootFilesystem is not true")
    if sc.get("privileged"):
        problems.append(f"{w}: privileged")
    caps = sc.get("capabilities") or {}
    if "ALL" not in (caps.get("drop") or []):
        problems.append(f"{w}: capabilities.drop lacks ALL")
    extra = set(caps.get("add") or []) - {"NET_BIND_SERVICE"}
    if extra:
        problems.append(f"{w}: capabilities.add beyond NET_BIND_SERVICE: {sorted(extra)}")
    if sc.get("runAsNonRoot") is not True and pod_sc.get("runAsNonRoot") is not True:
        problems.append(f"{w}: runAsNonRoot not set at pod or container level")
    uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
    if uid == 0:
        problems.append(f"{w}: runAsUser 0")


def validate(units):
    problems = []
    for unit, files in sorted(units.items()):
        objs = []
        for f, docs in files.items():
            for i, doc in enumerate(docs):
                where = f"{os.path.join(unit, f)}[{i}]"
                if not isinstance(doc, dict):
                    problems.append(f"{where}: not a mapping")
                    continue
                kind = doc.get("kind")
                if not kind or not doc.get("apiVersion"):
                    problems.append(f"{where}: missing apiVersion or kind")
                    continue
                if kind in API and doc["apiVersion"] != API[kind]:
                    problems.append(f"{where}: {kind} apiVersion {doc['apiVersion']}, expected {API[kind]}")
                elif kind not in API:
                    problems.append(f"{where}: unexpected kind {kind}")
                if kind != "Kustomization" and not (doc.get("metadata") or {}).get("name"):
                    problems.append(f"{where}: missing metadata.name")
                objs.append((f, where, doc))

        kust = [d for f, _, d in objs if d.get("kind") == "Kustomization"]
        if len(kust) != 1:
            problems.append(f"{unit}: expected one Kustomization, found {len(kust)}")
        else:
            listed = kust[0].get("resources") or []
            for r in listed:
                if r not in files:
                    problems.append(f"{unit}/kustomization.yaml: resource {r} does not exist")
            for f in files:
                if f != "kustomization.yaml" and f not in listed:
                    problems.append(f"{unit}/{f}: not listed in kustomization.yaml resources")

        by_kind = {}
        for f, where, d in objs:
            by_kind.setdefault(d.get("kind"), []).append((where, d))
        workloads = [(w, d) for k in WORKLOADS for w, d in by_kind.get(k, [])]

        for where, d in workloads:
            spec = d.get("spec") or {}
            tmpl = spec.get("template") or {}
            tlabels = (tmpl.get("metadata") or {}).get("labels") or {}
            sel = (spec.get("selector") or {}).get("matchLabels") or {}
            if not labels_match(sel, tlabels):
                problems.append(f"{where}: selector {sel} does not match template labels {tlabels}")
            pod = tmpl.get("spec") or {}
            containers = pod.get("containers") or []
            if not containers:
                problems.append(f"{where}: no containers")
            for c in containers:
                check_container(where, c, pod.get("securityContext") or {}, problems)

        def matching_workloads(selector):
            return [(w, d) for w, d in workloads
                    if labels_match(selector, ((d["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {})]

        for where, svc in by_kind.get("Service", []):
            spec = svc.get("spec") or {}
            if spec.get("type", "ClusterIP") != "ClusterIP":
                problems.append(f"{where}: type {spec.get('type')}, expected ClusterIP")
            have = {(p.get("port"), p.get("protocol", "TCP")) for p in spec.get("ports") or []}
            for want in ((53, "UDP"), (53, "TCP")):
                if want not in have:
                    problems.append(f"{where}: no port {want[0]}/{want[1]}")
            targets = matching_workloads(spec.get("selector") or {})
            if not targets:
                problems.append(f"{where}: selector {spec.get('selector')} matches no workload")
            for p in spec.get("ports") or []:
                tp, proto = p.get("targetPort", p.get("port")), p.get("protocol", "TCP")
                for w, d in targets:
                    cports = [cp for c in d["spec"]["template"]["spec"].get("containers") or []
                              for cp in c.get("ports") or []]
                    if not any((cp.get("name") == tp or cp.get("containerPort") == tp)
                               and cp.get("protocol", "TCP") == proto for cp in cports):
                        problems.append(f"{where}: targetPort {tp}/{proto} not declared by {w}")

        for where, pdb in by_kind.get("PodDisruptionBudget", []):
            spec = pdb.get("spec") or {}
            sel = (spec.get("selector") or {}).get("matchLabels") or {}
            targets = matching_workloads(sel)
            if not targets:
                problems.append(f"{where}: selector {sel} matches no workload")
            for w, d in targets:
                reps = d["spec"].get("replicas", 1)
                m = spec.get("minAvailable")
                if d.get("kind") == "Deployment" and isinstance(m, int) and m >= reps:
                    problems.append(f"{where}: minAvailable {m} >= {w} replicas {reps}: no node could ever be drained")

        deployments = {d["metadata"]["name"]: d for _, d in by_kind.get("Deployment", [])}
        for where, hpa in by_kind.get("HorizontalPodAutoscaler", []):
            spec = hpa.get("spec") or {}
            ref = spec.get("scaleTargetRef") or {}
            target = deployments.get(ref.get("name")) if ref.get("kind") == "Deployment" else None
            if target is None:
                problems.append(f"{where}: scaleTargetRef {ref} names no Deployment here")
            mn, mx = spec.get("minReplicas", 1), spec.get("maxReplicas")
            if not isinstance(mx, int) or mn > mx:
                problems.append(f"{where}: minReplicas {mn} / maxReplicas {mx} invalid")
            cpu = [m for m in spec.get("metrics") or []
                   if m.get("type") == "Resource" and (m.get("resource") or {}).get("name") == "cpu"]
            if not cpu:
                problems.append(f"{where}: no CPU Resource metric")
            if target is not None:
                for c in target["spec"]["template"]["spec"].get("containers") or []:
                    if "cpu" not in ((c.get("resources") or {}).get("requests") or {}):
                        problems.append(f"{where}: CPU utilisation needs a CPU request on {c.get('name')}")
    return problems


def find(units, kind):
    for files in units.values():
        for docs in files.values():
            for d in docs:
                if isinstance(d, dict) and d.get("kind") == kind:
                    yield d


def first_container(units, kind="Deployment"):
    return next(find(units, kind))["spec"]["template"]["spec"]["containers"][0]



MUTATIONS = [
    ("selector differs from template labels",
     lambda u: next(find(u, "Deployment"))["spec"]["selector"]["matchLabels"].update({"app.kubernetes.io/name": "other"}),
     "does not match template labels"),
    ("container without image", lambda u: first_container(u).pop("image"), "no image"),
    ("container without limits", lambda u: first_container(u)["resources"].pop("limits"), "no resources.limits"),
    ("container without readiness probe", lambda u: first_container(u).pop("readinessProbe"), "no readinessProbe"),
    ("probe on an undeclared port",
     lambda u: first_container(u)["livenessProbe"]["tcpSocket"].update({"port": 5353}), "not a declared container port"),
    ("privilege escalation allowed",
     lambda u: first_container(u)["securityContext"].update({"allowPrivilegeEscalation": True}), "allowPrivilegeEscalation"),
    ("writable root filesystem",
     lambda u: first_container(u)["securityContext"].pop("readOnlyRootFilesystem"), "readOnlyRootFilesystem"),
    ("extra capability",
     lambda u: first_container(u)["securityContext"]["capabilities"]["add"].append("NET_ADMIN"), "beyond NET_BIND_SERVICE"),
    ("capabilities not dropped",
     lambda u: first_container(u)["securityContext"]["capabilities"].pop("drop"), "drop lacks ALL"),
    ("may run as root",
     lambda u: (first_container(u)["securityContext"].pop("runAsNonRoot"),
                next(find(u, "Deployment"))["spec"]["template"]["spec"]["securityContext"].pop("runAsNonRoot")),
     "runAsNonRoot"),
    ("service without UDP",
     lambda u: next(find(u, "Service"))["spec"].update(
         {"ports": [p for p in next(find(u, "Service"))["spec"]["ports"] if p.get("protocol") != "UDP"]}),
     "no port 53/UDP"),
    ("service of type LoadBalancer", lambda u: next(find(u, "Service"))["spec"].update({"type": "LoadBalancer"}),
     "expected ClusterIP"),
    ("service selects nothing",
     lambda u: next(find(u, "Service"))["spec"].update({"selector": {"app": "nope"}}), "matches no workload"),
    ("service targets an undeclared port",
     lambda u: next(find(u, "Service"))["spec"]["ports"][0].update({"targetPort": "dns-quic"}), "not declared by"),
    ("PDB selects nothing",
     lambda u: next(find(u, "PodDisruptionBudget"))["spec"]["selector"].update({"matchLabels": {"app": "nope"}}),
     "matches no workload"),
    ("PDB blocks every drain",
     lambda u: next(find(u, "PodDisruptionBudget"))["spec"].update({"minAvailable": 2}), "no node could ever be drained"),
    ("HPA scales a missing Deployment",
     lambda u: next(find(u, "HorizontalPodAutoscaler"))["spec"]["scaleTargetRef"].update({"name": "gone"}),
     "names no Deployment"),
    ("HPA without CPU metric",
     lambda u: next(find(u, "HorizontalPodAutoscaler"))["spec"].update({"metrics": []}), "no CPU Resource metric"),
    ("old HPA API", lambda u: next(find(u, "HorizontalPodAutoscaler")).update({"apiVersion": "autoscaling/v1"}),
     "expected autoscaling/v2"),
    ("nameless object", lambda u: next(find(u, "PodDisruptionBudget"))["metadata"].pop("name"), "missing metadata.name"),
    ("kustomization misses a file",
     lambda u: next(find(u, "Kustomization"))["resources"].pop(), "not listed in kustomization.yaml"),
    ("kustomization lists a missing file",
     lambda u: next(find(u, "Kustomization"))["resources"].append("gone.yaml"), "does not exist"),
    ("DaemonSet container without securityContext",
     lambda u: first_container(u, "DaemonSet").pop("securityContext"), "no securityContext"),
]


def self_test(root):
    units = load(root)
    base = validate(units)
    if base:
        print(f"self-test: manifests not clean to start with: {base}")
        return 1
    failures = 0
    for name, mutate, expect in MUTATIONS:
        u = copy.deepcopy(units)
        mutate(u)
        found = validate(u)
        if any(expect in p for p in found):
            print(f"ok: '{name}' reported")
        else:
            print(f"self-test: '{name}' NOT reported (got {found})")
            failures += 1
    return 1 if failures else 0


def main(argv):
    if len(argv) == 3 and argv[1] == "--self-test":
        return self_test(argv[2])
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    units = load(argv[1])
    if not units:
        print(f"{argv[1]}: no manifests found")
        return 1
    problems = validate(units)
    for p in problems:
        print(p)
    if problems:
        return 1
    n = sum(len(docs) for files in units.values() for docs in files.values())
    print(f"{argv[1]}: {n} documents in {len(units)} kustomization(s): clean")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
