"""Loans: products, applications, approval with a disbursement job, the annuity schedule, each loan's own account in
the ledger (books), servicing (interest, collection, late fees, reminders) and early repayment."""

from core.loans.applications import (
    LoanApplication,
    apply_for_loan,
    get_loan,
    get_schedule,
    list_loans,
    reject_loan,
)
from core.loans.disbursement import approve_loan, disburse_loan
from core.loans.products import NewLoanProduct, create_product, list_products
from core.loans.repayment import repay_loan, request_repayment
from core.loans.servicing import ServicingReport, service_loans

__all__ = [
    "LoanApplication",
    "NewLoanProduct",
    "ServicingReport",
    "apply_for_loan",
    "approve_loan",
    "create_product",
    "disburse_loan",
    "get_loan",
    "get_schedule",
    "list_loans",
    "list_products",
    "reject_loan",
    "repay_loan",
    "request_repayment",
    "service_loans",
]
