"""The trust core: the pipeline (PLAN -> APPROVE -> APPLY -> PROVE -> UNDO), the plan store, the policy,
the executor (the only writer), the ledger and its anchors, the approvers and the state directory.
"""
