# Generates the dialect regression fixtures: python3 gen.py (in this directory).
# Expected shards come from Python's MD5, independently of the engine.
import json, hashlib
def shard(salt, key, total):
    return int(hashlib.md5((salt+"-"+key).encode()).hexdigest()[:8],16) % total
def split(var, shards): return {"variationKey": var, "shards": shards}
def sh(salt, lo, hi, total=None):
    d = {"salt": salt, "ranges": [{"start": lo, "end": hi}]}
    if total is not None: d["totalShards"] = total
    return d
def cond(attr, op, val): return {"attribute": attr, "operator": op, "value": val}
def alloc(key, splits, rules=None, **kw):
    a = {"key": key}
    if rules is not None: a["rules"] = [{"conditions": c} for c in rules]
    a.update(kw); a["splits"] = splits; a["doLog"] = True
    return a
def svars(*names): return {n: {"key": n, "value": n} for n in names}
flags = {}
cases = {}
def det(code, var=None, alloc=None, pos=None, unmatched=()):
    d = {"flagEvaluationCode": code, "variationKey": var,
         "matchedAllocation": None if alloc is None else {"key": alloc, "allocationEvaluationCode": "MATCH", "orderPosition": pos},
         "unmatchedAllocations": [{"key": k, "allocationEvaluationCode": c, "orderPosition": p} for k, c, p in unmatched],
         "unevaluatedAllocations": []}
    return d
def subj(key, attrs, assignment, details):
    return {"subjectKey": key, "subjectAttributes": attrs, "assignment": assignment, "evaluationDetails": details}

# 1. totalShards only on the shards (none on the flag); one shard's total differs.
flags["shard-total"] = {"key": "shard-total", "enabled": True, "variationType": "STRING",
  "variations": svars("control", "treatment"),
  "allocations": [alloc("experiment", [
      split("control", [sh("tr", 0, 60, 100), sh("sp", 0, 5000, 10000)]),
      split("treatment", [sh("tr", 0, 60, 100), sh("sp", 5000, 10000, 10000)])])]}
subs = []
for k in ["alice", "bob", "charlie", "dana", "erin", "frank", "grace", "heidi"]:
    t, s = shard("tr", k, 100), shard("sp", k, 10000)
    if t < 60:
        v = "control" if s < 5000 else "treatment"
        subs.append(subj(k, {}, v, det("MATCH", v, "experiment", 1)))
    else:
        subs.append(subj(k, {}, "none", det("DEFAULT_ALLOCATION_NULL", unmatched=[("experiment", "TRAFFIC_EXPOSURE_MISS", 1)])))
cases["test-dialect-shard-total.json"] = {"flag": "shard-total", "variationType": "STRING", "defaultValue": "none", "subjects": subs}

# 2. A shard's own totalShards wins over the flag's.
flags["shard-total-wins"] = {"key": "shard-total-wins", "enabled": True, "variationType": "INTEGER", "totalShards": 10000,
  "variations": {"one": {"key": "one", "value": 1}, "two": {"key": "two", "value": 2}},
  "allocations": [alloc("split", [split("one", [sh("own", 0, 50, 100)]), split("two", [sh("own", 50, 100, 100)])])]}
subs = []
for k in ["alice", "bob", "charlie", "dana", "erin", "frank"]:
    v = "one" if shard("own", k, 100) < 50 else "two"
    subs.append(subj(k, {}, 1 if v == "one" else 2, det("MATCH", v, "split", 1)))
cases["test-dialect-shard-total-wins.json"] = {"flag": "shard-total-wins", "variationType": "INTEGER", "defaultValue": 0, "subjects": subs}

# 3. No totalShards anywhere: a flag that only targets; an empty subject key is fine.
flags["targeting-only"] = {"key": "targeting-only", "enabled": True, "variationType": "BOOLEAN",
  "variations": {"on": {"key": "on", "value": True}, "off": {"key": "off", "value": False}},
  "allocations": [alloc("beta", [split("on", [])], rules=[[cond("plan", "ONE_OF", ["beta"])]]),
                  alloc("rest", [split("off", [])])]}
cases["test-dialect-targeting-only.json"] = {"flag": "targeting-only", "variationType": "BOOLEAN", "defaultValue": None, "subjects": [
  subj("", {"plan": "beta"}, True, det("MATCH", "on", "beta", 1)),
  subj("", {}, False, det("MATCH", "off", "rest", 2, [("beta", "FAILING_RULE", 1)])),
  subj("alice", {"plan": "beta"}, True, det("MATCH", "on", "beta", 1))]}

# 4. Empty subject key with a flag that needs a shard: targeting before the shard still works.
flags["empty-key-sharded"] = {"key": "empty-key-sharded", "enabled": True, "variationType": "STRING",
  "variations": svars("green", "blue", "red"),
  "allocations": [alloc("internal", [split("green", [])], rules=[[cond("email", "MATCHES", "@mycompany\\.com$")]]),
                  alloc("experiment", [split("blue", [sh("x", 0, 5000, 10000)]), split("red", [sh("x", 5000, 10000, 10000)])])]}
v = "blue" if shard("x", "zoe", 10000) < 5000 else "red"
cases["test-dialect-empty-key.json"] = {"flag": "empty-key-sharded", "variationType": "STRING", "defaultValue": "default", "subjects": [
  subj("", {"email": "null@mycompany.com"}, "green", det("MATCH", "green", "internal", 1)),
  subj("", {"email": "someone@example.com"}, "default", det("ASSIGNMENT_ERROR", unmatched=[("internal", "FAILING_RULE", 1)])),
  subj("zoe", {}, v, det("MATCH", v, "experiment", 2, [("internal", "FAILING_RULE", 1)]))]}

# 5. JSON values written as objects and arrays.
flags["json-object"] = {"key": "json-object", "enabled": True, "variationType": "JSON",
  "variations": {"obj": {"key": "obj", "value": {"theme": "dark", "sizes": [1, 2.5], "beta": True, "none": None}},
                 "arr": {"key": "arr", "value": [1, "two", {"three": 3}]},
                 "text": {"key": "text", "value": "{\"legacy\": true}"}},
  "allocations": [alloc("arr", [split("arr", [])], rules=[[cond("kind", "ONE_OF", ["array"])]]),
                  alloc("text", [split("text", [])], rules=[[cond("kind", "ONE_OF", ["text"])]]),
                  alloc("obj", [split("obj", [])])]}
cases["test-dialect-json-object.json"] = {"flag": "json-object", "variationType": "JSON", "defaultValue": {}, "subjects": [
  subj("a", {}, {"theme": "dark", "sizes": [1, 2.5], "beta": True, "none": None}, det("MATCH", "obj", "obj", 3, [("arr", "FAILING_RULE", 1), ("text", "FAILING_RULE", 2)])),
  subj("b", {"kind": "array"}, [1, "two", {"three": 3}], det("MATCH", "arr", "arr", 1)),
  subj("c", {"kind": "text"}, {"legacy": True}, det("MATCH", "text", "text", 2, [("arr", "FAILING_RULE", 1)]))]}

# 6. Regular expressions for an RE2/Rust engine.
flags["regex-dialect"] = {"key": "regex-dialect", "enabled": True, "variationType": "STRING",
  "variations": svars("broken", "broken-not", "cafe", "posix", "fallback"),
  "allocations": [
    alloc("broken", [split("broken", [])], rules=[[cond("text", "MATCHES", "(?<=x)y")]]),
    alloc("broken-not", [split("broken-not", [])], rules=[[cond("text", "NOT_MATCHES", "(?<=x)y")]]),
    alloc("cafe", [split("cafe", [])], rules=[[cond("text", "MATCHES", "(?u)\\bcaf\u00e9\\b")]]),
    alloc("posix", [split("posix", [])], rules=[[cond("text", "MATCHES", "(?iu:^[[:alpha:]]+[[:digit:]]+$)")]]),
    alloc("fallback", [split("fallback", [])])]}
un = [("broken", "FAILING_RULE", 1), ("broken-not", "FAILING_RULE", 2)]
cases["test-dialect-regex.json"] = {"flag": "regex-dialect", "variationType": "STRING", "defaultValue": "default", "subjects": [
  subj("u1", {"text": "un caf\u00e9 noir"}, "cafe", det("MATCH", "cafe", "cafe", 3, un)),
  subj("u2", {"text": "un caf\u00e9s noir"}, "fallback", det("MATCH", "fallback", "fallback", 5, un + [("cafe", "FAILING_RULE", 3), ("posix", "FAILING_RULE", 4)])),
  subj("u3", {"text": "Abc123"}, "posix", det("MATCH", "posix", "posix", 4, un + [("cafe", "FAILING_RULE", 3)])),
  subj("u4", {"text": "xy"}, "fallback", det("MATCH", "fallback", "fallback", 5, un + [("cafe", "FAILING_RULE", 3), ("posix", "FAILING_RULE", 4)])),
  subj("u5", {}, "fallback", det("MATCH", "fallback", "fallback", 5, un + [("cafe", "FAILING_RULE", 3), ("posix", "FAILING_RULE", 4)]))]}

# 7. startAt and endAt with microseconds (the suite's clock is 2026-06-01T00:00:00Z).
flags["micro-dates"] = {"key": "micro-dates", "enabled": True, "variationType": "STRING",
  "variations": svars("ended", "later", "now"),
  "allocations": [alloc("ended", [split("ended", [])], endAt="2026-05-31T23:59:59.999999Z"),
                  alloc("later", [split("later", [])], startAt="2026-06-01T00:00:00.000001Z"),
                  alloc("now", [split("now", [])], startAt="2026-06-01T00:00:00.000000Z", endAt="2026-06-01T00:00:00.000000+00:00")]}
cases["test-dialect-micro-dates.json"] = {"flag": "micro-dates", "variationType": "STRING", "defaultValue": "default", "subjects": [
  subj("u", {}, "now", det("MATCH", "now", "now", 3, [("ended", "AFTER_END_TIME", 1), ("later", "BEFORE_START_TIME", 2)]))]}

# A match leaves every later allocation UNEVALUATED.
for c in cases.values():
    allocs = flags[c["flag"]]["allocations"]
    for sub in c["subjects"]:
        m = sub["evaluationDetails"]["matchedAllocation"]
        if m:
            sub["evaluationDetails"]["unevaluatedAllocations"] = [
                {"key": a["key"], "allocationEvaluationCode": "UNEVALUATED", "orderPosition": i + 1}
                for i, a in enumerate(allocs) if i + 1 > m["orderPosition"]]

doc = {"id": None, "createdAt": "2026-05-31T12:00:00.123456Z", "format": "SERVER", "environment": {"name": "Test"},
       "banditReferences": None, "bandits": None, "futureTopLevel": {"x": [1, None]}, "flags": flags}
json.dump(doc, open("flags-dialect.json", "w"), indent=2, ensure_ascii=False); open("flags-dialect.json","a").write("\n")
for name, c in cases.items():
    json.dump(c, open("tests/" + name, "w"), indent=2, ensure_ascii=False)
    open("tests/" + name, "a").write("\n")
print(sum(len(c["subjects"]) for c in cases.values()), "checks")
