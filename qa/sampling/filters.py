"""The console's sampling filter: the default queue leaves out sessions decided "not sampled"."""

from qa.admin.filters import DefaultChoiceFilter
from qa.sampling.services import not_sampled_expression

SAMPLED = "sampled"
NOT_SAMPLED = "not_sampled"


class SampledFilter(DefaultChoiceFilter):
    title = "QA sampling"
    parameter_name = "sampling"
    default = SAMPLED
    # Sampled includes sessions not decided yet (still going, or older than sampling): with the
    # default rule (100%) the queue is what it was before sampling existed.
    choices_source = [(SAMPLED, "Sampled (or not decided yet)"), (NOT_SAMPLED, "Not sampled")]

    def queryset(self, request, queryset):
        value = self.effective_value()
        if value == SAMPLED:
            return queryset.filter(~not_sampled_expression())
        if value == NOT_SAMPLED:
            return queryset.filter(not_sampled_expression())
        return queryset
